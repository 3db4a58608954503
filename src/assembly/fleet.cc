#include "assembly/fleet.h"

namespace vdswap {

Fleet::Fleet(Db& db, Hypervisor& hv, Clock& clock, const FleetOptions& options)
    : images(db, options.state_dir),
      hosts(db, hv, clock),
      templates(db, images, clock),
      vm_table(db),
      journal(db),
      host_images(db),
      rollout_store(db),
      distributor(host_images, hv, clock),
      disks(images, distributor, hv),
      agent(hv, clock),
      vms(vm_table, locks, hosts, templates, images, disks, agent, hv, clock, options.default_uri),
      swapper(db, vm_table, journal, locks, hosts, templates, disks, agent, hv, clock,
              options.swap),
      rollouts(rollout_store, vm_table, templates, hosts, swapper, agent, clock) {
  rollouts.PrefetchWith(&disks);
}

}  // namespace vdswap
