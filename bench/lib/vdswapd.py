"""Used by the Python benchmarks: a vdswapd started for a benchmark, answering on its socket."""
import os
import subprocess
import time


class Vdswapd:
    """Runs DAEMON --state-dir STATE FLAGS (its log in STATE.log) and waits until
    `CLI status` answers (RuntimeError with the log's tail after `deadline` seconds or
    when it dies first). `cli(...)` is the argv of a CLI command against it."""

    def __init__(self, daemon, cli, state, flags=(), deadline=30.0):
        self.cli_path, self.state = cli, state
        self.sock = os.path.join(state, "vdswapd.sock")
        self.log = state + ".log"
        os.makedirs(state, exist_ok=True)
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen([daemon, "--state-dir", state, *flags],
                                         stdout=subprocess.DEVNULL, stderr=log)
        end = time.monotonic() + deadline
        while subprocess.run(self.cli("status"), capture_output=True).returncode != 0:
            if time.monotonic() > end or self.proc.poll() is not None:
                with open(self.log) as log:
                    tail = "".join(log.readlines()[-20:])
                raise RuntimeError(f"vdswapd did not answer on {self.sock}:\n{tail}")
            time.sleep(0.1)

    def cli(self, *args):
        return [self.cli_path, "--socket", self.sock, *args]

    def stop(self, timeout=60):
        """SIGTERM, then SIGKILL after `timeout` seconds."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
