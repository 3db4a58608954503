#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <string_view>

#include "core/status.h"
#include "libvirt/libvirt_refs.h"

namespace vdswap {

// A volume's bytes, read and written where they are. On a local host
// (hypervisor/host_uri.h) through the volume's file, which is on this machine; on a
// remote host through a libvirt stream (libvirtd 9.0 may die when a client holding a
// stream dies, docs/operations.md "libvirt streams": so streams only where no path exists).

// Writes `size` bytes of `in` into `vol` from its start and makes them durable (local:
// fdatasync); calls `sent(bytes so far)` after each chunk. kUnavailable on a failed write.
Status WriteVolume(virConnectPtr conn, virStorageVolPtr vol, bool local, std::istream& in,
                   uint64_t size, const std::function<void(uint64_t)>& sent);

// Reads `length` bytes of `vol` from `offset` (length 0: to its end), passing each chunk
// to `consume` in order.
Status ReadVolume(virConnectPtr conn, virStorageVolPtr vol, bool local, uint64_t offset,
                  uint64_t length, const std::function<void(std::string_view)>& consume);

}  // namespace vdswap
