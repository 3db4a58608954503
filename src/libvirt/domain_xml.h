#pragma once

#include <string>

#include "core/status.h"
#include "hypervisor/hypervisor.h"

namespace vdswap {

enum class Accel { kKvm, kTcg };

// The namespace of the <vdswap:vm/> element DomainXml puts in every domain's <metadata>:
// the mark of a domain vdswap defined and may change.
inline constexpr char kVmMetadataNs[] = "https://vdswap.dev/xmlns/vm/1";

// Resolves --accel: "kvm", "tcg", or "auto" = KVM only when /dev/kvm opens and the CPU
// does not report running under a hypervisor (nested KVM hangs guests; see docs).
Result<Accel> ResolveAccel(const std::string& flag);

// Pure XML builders for libvirt; golden-tested. Every value is escaped.
// The domain: i440fx `pc` machine with ACPI (needed for hot-unplug), direct kernel boot
// or the disk's own bootloader (BIOS, or OVMF without Secure Boot for `spec.efi`),
// virtio disks with fixed serials (os=vda, app=vdb read-only, data=vdc), one virtio NIC
// per `spec.nics` entry on its libvirt network with its fixed MAC, the agent channel,
// and a serial console logged to `console_log`. `uuid` (may be
// empty) keeps the identity of a domain being redefined.
std::string DomainXml(const VmSpec& spec, Accel accel, const std::string& console_log,
                      const std::string& uuid = "");
// One <disk> element, as attached or detached.
std::string DiskXml(const DiskSpec& disk);
// A directory storage pool.
std::string PoolXml(const std::string& name, const std::string& path);
// A volume: raw or qcow2 of `capacity` bytes, optionally with a backing store.
std::string VolumeXml(const std::string& name, uint64_t capacity, const std::string& format,
                      const std::string& backing = "", const std::string& backing_format = "");

// Reads the disks (serial, source, format, readonly) out of a domain's XML.
// kInternal when the XML does not parse.
Result<std::vector<DiskSpec>> ParseDomainDisks(const std::string& xml);
// Reads the network interfaces (source network, MAC) out of a domain's XML.
Result<std::vector<NicSpec>> ParseDomainNics(const std::string& xml);
// Reads a pool's target path out of its XML.
Result<std::string> ParsePoolPath(const std::string& xml);
// The backing file of a volume, out of its XML ("" when it has none).
Result<std::string> ParseVolumeBackingPath(const std::string& xml);
// The path of the unix socket QEMU listens on for the agent channel, out of a running
// domain's live XML (libvirt picks it when the domain starts). kFailedPrecondition when
// the channel has none.
Result<std::string> ParseAgentSocketPath(const std::string& xml);

}  // namespace vdswap
