#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "hypervisor/hypervisor.h"
#include "libvirt/domain_xml.h"

// libvirt's own type names, declared to keep libvirt's headers out of ours.
struct _virConnect;  // NOLINT(bugprone-reserved-identifier)
struct _virDomain;   // NOLINT(bugprone-reserved-identifier)

namespace vdswap {

// The real Hypervisor on libvirt's C API. Keeps one connection per URI (reconnecting
// when it dies), runs libvirt's event loop on its own thread for keepalives and
// device-removed events. Thread-safe. REQUIRES: SIGPIPE is ignored in the process (libvirt's
// client writes to its sockets with write(2): a peer that closed first must give EPIPE).
class LibvirtHypervisor : public Hypervisor {
 public:
  // `pool_root`: where new pools' directories go on hosts.
  explicit LibvirtHypervisor(Accel accel, std::string pool_root = "/var/lib/libvirt/images/vdswap");
  ~LibvirtHypervisor() override;

  Result<std::string> EnsurePool(const HostRef& host) override;
  Result<std::string> FindVolume(const HostRef& host, const std::string& volume) override;
  Result<uint64_t> UploadVolume(const HostRef& host, const std::string& volume,
                                const std::string& local_path, const ProgressFn& progress) override;
  Result<std::string> CreateOverlay(const HostRef& host, const std::string& volume,
                                    const std::string& backing,
                                    const std::string& backing_format) override;
  Result<std::string> CreateBlankVolume(const HostRef& host, const std::string& volume,
                                        uint64_t bytes) override;
  Status DeleteVolume(const HostRef& host, const std::string& volume) override;
  Result<std::vector<std::string>> VolumeUsers(const HostRef& host,
                                               const std::string& volume) override;
  Result<std::string> VolumeSha256(const HostRef& host, const std::string& volume) override;
  Status DefineAndStart(const HostRef& host, const VmSpec& spec) override;
  Status Start(const HostRef& host, const std::string& vm) override;
  Status Shutdown(const HostRef& host, const std::string& vm,
                  std::chrono::milliseconds grace) override;
  Status Destroy(const HostRef& host, const std::string& vm) override;
  Result<VmLiveState> GetState(const HostRef& host, const std::string& vm) override;
  Status DetachDisk(const HostRef& host, const std::string& vm, const std::string& serial,
                    std::chrono::milliseconds timeout) override;
  Status AttachDisk(const HostRef& host, const std::string& vm, const DiskSpec& disk) override;
  Status CheckNetwork(const HostRef& host, const std::string& network) override;
  Result<std::vector<InterfaceAddresses>> LeasedAddresses(const HostRef& host,
                                                          const std::string& vm) override;
  Result<std::string> ConsoleLog(const HostRef& host, const std::string& vm,
                                 uint64_t max_bytes) override;
  Result<std::unique_ptr<AgentChannel>> OpenAgent(const HostRef& host,
                                                  const std::string& vm) override;

 private:
  // A new reference to the connection for `uri` (caller closes it).
  Result<_virConnect*> Connect(const std::string& uri);
  void OnDeviceRemoved(const std::string& vm);
  static void DeviceRemovedCallback(_virConnect*, _virDomain* dom, const char*, void* opaque);

  Accel accel_;
  std::string pool_root_;
  std::mutex mu_;
  std::map<std::string, _virConnect*> conns_;
  std::condition_variable removed_cv_;
  uint64_t removed_seq_ = 0;
  std::atomic<bool> stop_{false};
  std::thread event_thread_;
};

}  // namespace vdswap
