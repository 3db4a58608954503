#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace vdswap {

// The libvirt networks a template's VMs get one NIC each on, from repeated `--network`
// flags: none given = {"default"} (libvirt's NAT network); "none" alone = no NIC.
// kInvalidArgument for a bad name, a repeated network, or "none" beside another.
Result<std::vector<std::string>> ParseNetworks(const std::vector<std::string>& flags);

// A MAC for a new NIC: QEMU's locally administered prefix 52:54:00 and 24 bits from
// `random`, as libvirt itself picks them.
std::string MacFromBits(uint32_t random);

}  // namespace vdswap
