# gnuplot script: bench/results/client_downtime.svg from the medians
set terminal svg size 800,420 dynamic font "sans,11"
set output "client_downtime.svg"
set title "app swap downtime, 3 VMs x 2 rounds (medians; failed requests per VM)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "ms"
set yrange [0:*]
set key top right
set xtics noenhanced
$data << EOD
"BBM, 122.5 failed" 2393.5 2476.0
"MBB, 23 failed" 883.0 596.0
"MBB+socket, 0 failed" 865.0 865.5
EOD
plot $data using 2:xtic(1) title "client's longest gap", '' using 3 title "agent downtime"
