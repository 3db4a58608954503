#include "libvirt/libvirt_hypervisor.h"

#include <algorithm>
#include <fstream>
#include <vector>

#include "core/kill_point.h"
#include "core/log.h"
#include "core/sha256.h"
#include "hypervisor/host_uri.h"
#include "hypervisor/line_agent_channel.h"
#include "libvirt/libvirt_refs.h"
#include "libvirt/volume_bytes.h"

namespace vdswap {

namespace {

using Clock = std::chrono::steady_clock;

std::string ConsoleLogVolume(const std::string& vm) { return vm + "-console.log"; }

Result<DomRef> LookupDomain(virConnectPtr conn, const std::string& vm) {
  DomRef dom(virDomainLookupByName(conn, vm.c_str()));
  if (!dom) return LibvirtError("vm '" + vm + "'");
  return dom;
}

// Whether the domain carries the marker DomainXml writes (libvirt keeps <metadata>
// elements by namespace; a domain without ours answers VIR_ERR_NO_DOMAIN_METADATA).
bool IsManaged(virDomainPtr dom) {
  char* marker = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, kVmMetadataNs, 0);
  if (marker == nullptr) return false;
  free(marker);
  return true;
}

// The domain `vm` when vdswap manages it: kNotFound when missing, NotManagedError when
// it belongs to someone else.
Result<DomRef> LookupManagedDomain(virConnectPtr conn, const std::string& vm) {
  ASSIGN_OR_RETURN(DomRef dom, LookupDomain(conn, vm));
  if (!IsManaged(dom.get())) return NotManagedError(vm);
  return dom;
}

Result<PoolRef> LookupPool(virConnectPtr conn, const HostRef& host) {
  PoolRef pool(virStoragePoolLookupByName(conn, host.pool.c_str()));
  if (!pool) return LibvirtError("pool '" + host.pool + "' on host '" + host.name + "'");
  return pool;
}

// The bytes of a remote VM's agent channel: a non-blocking libvirt stream.
class LibvirtByteStream : public ByteStream {
  static constexpr auto kAliveCheckEvery = std::chrono::milliseconds(500);
  static constexpr auto kPollEvery = std::chrono::milliseconds(5);

 public:
  LibvirtByteStream(ConnRef conn, StreamRef stream)
      : conn_(std::move(conn)), stream_(std::move(stream)) {}
  // Aborted before it is freed and before its connection is closed (docs/operations.md).
  ~LibvirtByteStream() override { virStreamAbort(stream_.get()); }

  Status Send(std::string_view data, Deadline deadline) override {
    while (!data.empty()) {
      int n = virStreamSend(stream_.get(), data.data(), data.size());
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
      } else if (n == -2 && Clock::now() < deadline) {
        std::this_thread::sleep_for(kPollEvery);
      } else {
        return Unavailable(n == -2 ? "timed out" : LastError());
      }
    }
    return Status::Ok();
  }

  Result<size_t> Receive(std::string& out, Deadline deadline) override {
    char chunk[16384];
    auto next_alive_check = Clock::now() + kAliveCheckEvery;
    while (true) {
      int n = virStreamRecv(stream_.get(), chunk, sizeof chunk);
      if (n > 0) {
        out.append(chunk, static_cast<size_t>(n));
        return static_cast<size_t>(n);
      }
      if (n != -2) return Unavailable(n == 0 ? std::string("end of stream") : LastError());
      if (Clock::now() >= deadline) return size_t{0};
      // Nothing yet. A stream whose libvirtd went away (restarted) reads like this
      // forever: check the connection now and then rather than wait out the deadline.
      if (Clock::now() >= next_alive_check) {
        if (virConnectIsAlive(conn_.get()) != 1) {
          return Unavailable("the connection to libvirtd closed");
        }
        next_alive_check = Clock::now() + kAliveCheckEvery;
      }
      std::this_thread::sleep_for(kPollEvery);
    }
  }

 private:
  ConnRef conn_;
  StreamRef stream_;
};

}  // namespace

LibvirtHypervisor::LibvirtHypervisor(Accel accel, std::string pool_root)
    : accel_(accel), pool_root_(std::move(pool_root)) {
  // Registered once per process, before any connection: keepalives and domain events
  // are dispatched by this loop.
  static const int registered = [] {
    // Errors are returned as Status; libvirt's default handler would also print them.
    virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});
    return virEventRegisterDefaultImpl();
  }();
  (void)registered;
  virEventAddTimeout(
      200, [](int, void*) {}, nullptr, nullptr);  // wakes the loop for stop_
  event_thread_ = std::thread([this] {
    while (!stop_) virEventRunDefaultImpl();
  });
}

LibvirtHypervisor::~LibvirtHypervisor() {
  {
    std::lock_guard lock(mu_);
    for (auto& [uri, conn] : conns_) virConnectClose(conn);
    conns_.clear();
  }
  stop_ = true;
  event_thread_.join();
}

void LibvirtHypervisor::DeviceRemovedCallback(virConnectPtr, virDomainPtr dom, const char*,
                                              void* opaque) {
  static_cast<LibvirtHypervisor*>(opaque)->OnDeviceRemoved(virDomainGetName(dom));
}

void LibvirtHypervisor::OnDeviceRemoved(const std::string&) {
  {
    std::lock_guard lock(mu_);
    ++removed_seq_;
  }
  removed_cv_.notify_all();
}

Result<virConnectPtr> LibvirtHypervisor::Connect(const std::string& uri) {
  std::lock_guard lock(mu_);
  auto it = conns_.find(uri);
  if (it != conns_.end()) {
    if (virConnectIsAlive(it->second) == 1) {
      virConnectRef(it->second);
      return it->second;
    }
    virConnectClose(it->second);
    conns_.erase(it);
  }
  // Host URIs come through the API: only allowed forms ever reach libvirt (some URIs run
  // commands). See hypervisor/host_uri.h.
  ASSIGN_OR_RETURN(HostUri checked, ParseHostUri(uri));
  if (!checked.warning.empty()) VLOG(kWarning) << "host uri " << uri << ": " << checked.warning;
  virConnectPtr conn = virConnectOpen(uri.c_str());
  if (conn == nullptr) return Unavailable("cannot connect to " + uri + ": " + LastError());
  virConnectSetKeepAlive(conn, 5, 3);
  virConnectDomainEventRegisterAny(conn, nullptr, VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                                   VIR_DOMAIN_EVENT_CALLBACK(DeviceRemovedCallback), this, nullptr);
  conns_[uri] = conn;
  virConnectRef(conn);
  return conn;
}

#define CONNECT_OR_RETURN(var, host)                              \
  ASSIGN_OR_RETURN(virConnectPtr var##_raw, Connect((host).uri)); \
  ConnRef var(var##_raw)

Result<std::string> LibvirtHypervisor::EnsurePool(const HostRef& host) {
  CONNECT_OR_RETURN(conn, host);
  PoolRef pool(virStoragePoolLookupByName(conn.get(), host.pool.c_str()));
  if (!pool) {
    std::string xml = PoolXml(host.pool, pool_root_ + "-" + host.pool);
    pool = PoolRef(virStoragePoolDefineXML(conn.get(), xml.c_str(), 0));
    if (!pool) return LibvirtError("defining pool '" + host.pool + "'");
    if (virStoragePoolBuild(pool.get(), 0) != 0) {
      return LibvirtError("building pool '" + host.pool + "'");
    }
    virStoragePoolSetAutostart(pool.get(), 1);
  }
  if (virStoragePoolIsActive(pool.get()) != 1 && virStoragePoolCreate(pool.get(), 0) != 0) {
    return LibvirtError("starting pool '" + host.pool + "'");
  }
  return ParsePoolPath(FreeString(virStoragePoolGetXMLDesc(pool.get(), 0)));
}

Result<std::string> LibvirtHypervisor::FindVolume(const HostRef& host, const std::string& volume) {
  CONNECT_OR_RETURN(conn, host);
  ASSIGN_OR_RETURN(PoolRef pool, LookupPool(conn.get(), host));
  VolRef vol(virStorageVolLookupByName(pool.get(), volume.c_str()));
  if (!vol) return NotFound("volume '" + volume + "' not on host '" + host.name + "'");
  return FreeString(virStorageVolGetPath(vol.get()));
}

Result<uint64_t> LibvirtHypervisor::UploadVolume(const HostRef& host, const std::string& volume,
                                                 const std::string& local_path,
                                                 const ProgressFn& progress) {
  std::ifstream in(local_path, std::ios::binary | std::ios::ate);
  if (!in) return NotFound("cannot read '" + local_path + "'");
  const uint64_t size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  ASSIGN_OR_RETURN(HostUri uri, ParseHostUri(host.uri));
  CONNECT_OR_RETURN(conn, host);
  ASSIGN_OR_RETURN(PoolRef pool, LookupPool(conn.get(), host));
  if (VolRef existing(virStorageVolLookupByName(pool.get(), volume.c_str())); existing) {
    return AlreadyExists("volume '" + volume + "' exists on host '" + host.name + "'");
  }
  std::string xml = VolumeXml(volume, size, "raw");
  VolRef vol(virStorageVolCreateXML(pool.get(), xml.c_str(), 0));
  if (!vol) return LibvirtError("creating volume '" + volume + "'");
  KillPoint("upload/created");
  auto last = Clock::now();
  auto report = [&](uint64_t sent) {
    if (!progress || Clock::now() - last < std::chrono::seconds(1)) return;
    last = Clock::now();
    progress({{"phase", "upload"},
              {"volume", volume},
              {"bytes", sent},
              {"message", "uploading " + volume + " to " + host.name + ": " +
                              std::to_string(sent * 100 / size) + "%"}});
  };
  Status written = WriteVolume(conn.get(), vol.get(), uri.IsLocal(), in, size, report);
  if (!written.ok()) {
    virStorageVolDelete(vol.get(), 0);
    return written;
  }
  KillPoint("upload/written");
  return size;
}

Result<std::string> LibvirtHypervisor::CreateOverlay(const HostRef& host, const std::string& volume,
                                                     const std::string& backing,
                                                     const std::string& backing_format) {
  CONNECT_OR_RETURN(conn, host);
  ASSIGN_OR_RETURN(PoolRef pool, LookupPool(conn.get(), host));
  VolRef base(virStorageVolLookupByPath(conn.get(), backing.c_str()));
  if (!base) return LibvirtError("backing volume '" + backing + "'");
  virStorageVolInfo info{};
  if (virStorageVolGetInfo(base.get(), &info) != 0) return LibvirtError("backing volume info");
  std::string xml = VolumeXml(volume, info.capacity, "qcow2", backing, backing_format);
  VolRef vol(virStorageVolCreateXML(pool.get(), xml.c_str(), 0));
  if (!vol) return LibvirtError("creating overlay '" + volume + "'");
  return FreeString(virStorageVolGetPath(vol.get()));
}

Result<std::string> LibvirtHypervisor::CreateBlankVolume(const HostRef& host,
                                                         const std::string& volume,
                                                         uint64_t bytes) {
  CONNECT_OR_RETURN(conn, host);
  ASSIGN_OR_RETURN(PoolRef pool, LookupPool(conn.get(), host));
  std::string xml = VolumeXml(volume, bytes, "qcow2");
  VolRef vol(virStorageVolCreateXML(pool.get(), xml.c_str(), 0));
  if (!vol) return LibvirtError("creating volume '" + volume + "'");
  return FreeString(virStorageVolGetPath(vol.get()));
}

Status LibvirtHypervisor::DeleteVolume(const HostRef& host, const std::string& volume) {
  CONNECT_OR_RETURN(conn, host);
  ASSIGN_OR_RETURN(PoolRef pool, LookupPool(conn.get(), host));
  VolRef vol(virStorageVolLookupByName(pool.get(), volume.c_str()));
  if (!vol) return Status::Ok();
  if (virStorageVolDelete(vol.get(), 0) != 0) return LibvirtError("deleting '" + volume + "'");
  return Status::Ok();
}

Result<std::vector<std::string>> LibvirtHypervisor::VolumeUsers(const HostRef& host,
                                                                const std::string& volume) {
  CONNECT_OR_RETURN(conn, host);
  ASSIGN_OR_RETURN(PoolRef pool, LookupPool(conn.get(), host));
  std::vector<std::string> users;
  VolRef vol(virStorageVolLookupByName(pool.get(), volume.c_str()));
  if (!vol) return users;
  const std::string path = FreeString(virStorageVolGetPath(vol.get()));
  virStorageVolPtr* vols = nullptr;
  const int nvols = virStoragePoolListAllVolumes(pool.get(), &vols, 0);
  if (nvols < 0) return LibvirtError("listing the volumes of pool '" + host.pool + "'");
  for (int i = 0; i < nvols; ++i) {
    VolRef v(vols[i]);
    auto backing = ParseVolumeBackingPath(FreeString(virStorageVolGetXMLDesc(v.get(), 0)));
    if (backing.ok() && *backing == path) users.push_back(virStorageVolGetName(v.get()));
  }
  free(vols);
  virDomainPtr* doms = nullptr;
  const int ndoms = virConnectListAllDomains(conn.get(), &doms, 0);
  if (ndoms < 0) return LibvirtError("listing the domains of host '" + host.name + "'");
  for (int i = 0; i < ndoms; ++i) {
    DomRef d(doms[i]);
    for (unsigned flags : {0u, static_cast<unsigned>(VIR_DOMAIN_XML_INACTIVE)}) {
      auto disks = ParseDomainDisks(FreeString(virDomainGetXMLDesc(d.get(), flags)));
      if (disks.ok() && std::any_of(disks->begin(), disks->end(),
                                    [&](const DiskSpec& disk) { return disk.path == path; })) {
        users.push_back(std::string("domain ") + virDomainGetName(d.get()));
        break;
      }
    }
  }
  free(doms);
  return users;
}

Result<std::string> LibvirtHypervisor::VolumeSha256(const HostRef& host,
                                                    const std::string& volume) {
  ASSIGN_OR_RETURN(HostUri uri, ParseHostUri(host.uri));
  CONNECT_OR_RETURN(conn, host);
  ASSIGN_OR_RETURN(PoolRef pool, LookupPool(conn.get(), host));
  VolRef vol(virStorageVolLookupByName(pool.get(), volume.c_str()));
  if (!vol) return NotFound("volume '" + volume + "' not on host '" + host.name + "'");
  Sha256 sha;
  RETURN_IF_ERROR(
      ReadVolume(conn.get(), vol.get(), uri.IsLocal(), 0, 0, [&sha](std::string_view bytes) {
        sha.Update(bytes);
      }).WithContext("host '" + host.name + "'"));
  return sha.HexDigest();
}

Status LibvirtHypervisor::DefineAndStart(const HostRef& host, const VmSpec& spec) {
  CONNECT_OR_RETURN(conn, host);
  ASSIGN_OR_RETURN(std::string pool_path, EnsurePool(host));
  DomRef existing(virDomainLookupByName(conn.get(), spec.name.c_str()));
  if (existing && !IsManaged(existing.get())) return NotManagedError(spec.name);
  if (existing && virDomainIsActive(existing.get()) == 1) {
    return FailedPrecondition("vm '" + spec.name + "' is running; cannot redefine it");
  }
  char uuid[VIR_UUID_STRING_BUFLEN] = "";
  if (existing) virDomainGetUUIDString(existing.get(), uuid);
  std::string xml = DomainXml(spec, accel_, pool_path + "/" + ConsoleLogVolume(spec.name), uuid);
  DomRef dom(virDomainDefineXML(conn.get(), xml.c_str()));
  if (!dom) return LibvirtError("defining vm '" + spec.name + "'");
  if (virDomainCreate(dom.get()) != 0) return LibvirtError("starting vm '" + spec.name + "'");
  return Status::Ok();
}

Status LibvirtHypervisor::Start(const HostRef& host, const std::string& vm) {
  CONNECT_OR_RETURN(conn, host);
  ASSIGN_OR_RETURN(DomRef dom, LookupManagedDomain(conn.get(), vm));
  if (virDomainIsActive(dom.get()) == 1) return Status::Ok();
  if (virDomainCreate(dom.get()) != 0) return LibvirtError("starting vm '" + vm + "'");
  return Status::Ok();
}

Status LibvirtHypervisor::Shutdown(const HostRef& host, const std::string& vm,
                                   std::chrono::milliseconds grace) {
  CONNECT_OR_RETURN(conn, host);
  DomRef dom(virDomainLookupByName(conn.get(), vm.c_str()));
  if (!dom) return Status::Ok();
  if (!IsManaged(dom.get())) return NotManagedError(vm);
  if (virDomainIsActive(dom.get()) != 1) return Status::Ok();
  auto deadline = Clock::now() + grace;
  if (virDomainShutdownFlags(dom.get(), VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN) != 0) {
    VLOG(kWarning) << "vm '" << vm << "': ACPI shutdown failed: " << LastError();
  }
  while (Clock::now() < deadline) {
    if (virDomainIsActive(dom.get()) != 1) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  VLOG(kWarning) << "vm '" << vm << "' did not power off within " << grace.count()
                 << " ms; forcing it off";
  if (virDomainIsActive(dom.get()) == 1 && virDomainDestroy(dom.get()) != 0) {
    return LibvirtError("forcing vm '" + vm + "' off");
  }
  return Status::Ok();
}

Status LibvirtHypervisor::Destroy(const HostRef& host, const std::string& vm) {
  CONNECT_OR_RETURN(conn, host);
  DomRef dom(virDomainLookupByName(conn.get(), vm.c_str()));
  if (dom) {
    if (!IsManaged(dom.get())) return NotManagedError(vm);
    if (virDomainIsActive(dom.get()) == 1 && virDomainDestroy(dom.get()) != 0) {
      return LibvirtError("destroying vm '" + vm + "'");
    }
    // With its UEFI variable store, if it has one (libvirt refuses to leave one behind).
    if (virDomainUndefineFlags(dom.get(), VIR_DOMAIN_UNDEFINE_NVRAM) != 0) {
      return LibvirtError("undefining vm '" + vm + "'");
    }
  }
  // The console log is a file in the pool that libvirt learns of by a refresh.
  PoolRef pool(virStoragePoolLookupByName(conn.get(), host.pool.c_str()));
  if (!pool || virStoragePoolRefresh(pool.get(), 0) != 0) {
    VLOG(kWarning) << "vm '" << vm << "': console log left in pool '" << host.pool
                   << "': " << LastError();
    return Status::Ok();
  }
  return DeleteVolume(host, ConsoleLogVolume(vm));
}

Result<VmLiveState> LibvirtHypervisor::GetState(const HostRef& host, const std::string& vm) {
  CONNECT_OR_RETURN(conn, host);
  VmLiveState state;
  DomRef dom(virDomainLookupByName(conn.get(), vm.c_str()));
  if (!dom) {
    if (LastErrorCode() == VIR_ERR_NO_DOMAIN) return state;
    return LibvirtError("vm '" + vm + "'");
  }
  state.exists = true;
  state.managed = IsManaged(dom.get());
  state.running = virDomainIsActive(dom.get()) == 1;
  std::string xml = FreeString(virDomainGetXMLDesc(dom.get(), 0));
  if (xml.empty()) return LibvirtError("vm '" + vm + "' definition");
  ASSIGN_OR_RETURN(state.disks, ParseDomainDisks(xml));
  ASSIGN_OR_RETURN(state.nics, ParseDomainNics(xml));
  return state;
}

Status LibvirtHypervisor::CheckNetwork(const HostRef& host, const std::string& network) {
  CONNECT_OR_RETURN(conn, host);
  NetRef net(virNetworkLookupByName(conn.get(), network.c_str()));
  if (!net) {
    return FailedPrecondition("network '" + network + "' is not defined on host '" + host.name +
                              "' (virsh -c " + host.uri + " net-list --all)");
  }
  if (virNetworkIsActive(net.get()) != 1) {
    return FailedPrecondition("network '" + network + "' on host '" + host.name +
                              "' is not active (virsh -c " + host.uri + " net-start " + network +
                              ")");
  }
  return Status::Ok();
}

Result<std::vector<InterfaceAddresses>> LibvirtHypervisor::LeasedAddresses(const HostRef& host,
                                                                           const std::string& vm) {
  CONNECT_OR_RETURN(conn, host);
  ASSIGN_OR_RETURN(DomRef dom, LookupDomain(conn.get(), vm));
  std::vector<InterfaceAddresses> out;
  if (virDomainIsActive(dom.get()) != 1) return out;
  virDomainInterfacePtr* ifaces = nullptr;
  int n =
      virDomainInterfaceAddresses(dom.get(), &ifaces, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0);
  if (n < 0) return LibvirtError("addresses of vm '" + vm + "'");
  for (int i = 0; i < n; ++i) {
    InterfaceAddresses iface;
    iface.mac = ifaces[i]->hwaddr ? ifaces[i]->hwaddr : "";
    std::vector<std::string> v6;
    for (unsigned a = 0; a < ifaces[i]->naddrs; ++a) {
      const virDomainIPAddress& addr = ifaces[i]->addrs[a];
      if (addr.addr == nullptr) continue;
      (addr.type == VIR_IP_ADDR_TYPE_IPV4 ? iface.addresses : v6).push_back(addr.addr);
    }
    iface.addresses.insert(iface.addresses.end(), v6.begin(), v6.end());
    out.push_back(std::move(iface));
    virDomainInterfaceFree(ifaces[i]);
  }
  free(ifaces);
  return out;
}

Result<std::string> LibvirtHypervisor::ConsoleLog(const HostRef& host, const std::string& vm,
                                                  uint64_t max_bytes) {
  CONNECT_OR_RETURN(conn, host);
  ASSIGN_OR_RETURN(PoolRef pool, LookupPool(conn.get(), host));
  // The log is written into the pool's directory beside the VM's volumes (DefineAndStart),
  // so it is read like a volume: through libvirt, from any host.
  if (virStoragePoolRefresh(pool.get(), 0) != 0) return LibvirtError("refreshing pool");
  const std::string name = ConsoleLogVolume(vm);
  VolRef vol(virStorageVolLookupByName(pool.get(), name.c_str()));
  if (!vol) return NotFound("vm '" + vm + "' has no console log on host '" + host.name + "'");
  virStorageVolInfo info{};
  if (virStorageVolGetInfo(vol.get(), &info) != 0) return LibvirtError("console log size");
  const uint64_t size = info.capacity;
  const uint64_t offset = size > max_bytes ? size - max_bytes : 0;
  std::string out;
  if (size == offset) return out;
  ASSIGN_OR_RETURN(HostUri uri, ParseHostUri(host.uri));
  RETURN_IF_ERROR(ReadVolume(conn.get(), vol.get(), uri.IsLocal(), offset, size - offset,
                             [&out](std::string_view bytes) { out.append(bytes); })
                      .WithContext("the console log of vm '" + vm + "'"));
  return out;
}

Status LibvirtHypervisor::DetachDisk(const HostRef& host, const std::string& vm,
                                     const std::string& serial, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  ASSIGN_OR_RETURN(VmLiveState state, GetState(host, vm));
  if (!state.exists) return NotFound("vm '" + vm + "' not found on host '" + host.name + "'");
  if (!state.managed) return NotManagedError(vm);
  const DiskSpec* disk = state.Disk(serial);
  if (disk == nullptr) return Status::Ok();
  CONNECT_OR_RETURN(conn, host);
  ASSIGN_OR_RETURN(DomRef dom, LookupDomain(conn.get(), vm));
  unsigned flags = VIR_DOMAIN_AFFECT_CONFIG | (state.running ? VIR_DOMAIN_AFFECT_LIVE : 0);
  uint64_t seen;
  {
    std::lock_guard lock(mu_);
    seen = removed_seq_;
  }
  std::string xml = DiskXml(*disk);
  Status call;
  if (virDomainDetachDeviceFlags(dom.get(), xml.c_str(), flags) != 0) {
    // The persistent part may already be gone from an earlier attempt; retry live only.
    // That fails too while the earlier unplug is still completing in the guest, so the
    // error only counts if the disk never goes away.
    if (!state.running ||
        virDomainDetachDeviceFlags(dom.get(), xml.c_str(), VIR_DOMAIN_AFFECT_LIVE) != 0) {
      call = LibvirtError("detaching " + serial + " from vm '" + vm + "'");
      if (!state.running) return call;
    }
  }
  // The guest releases the device asynchronously: wait for the event, confirm in the
  // live definition.
  while (true) {
    ASSIGN_OR_RETURN(VmLiveState now, GetState(host, vm));
    if (now.Disk(serial) == nullptr) return Status::Ok();
    std::unique_lock lock(mu_);
    if (Clock::now() >= deadline) {
      if (!call.ok()) return call;
      return Unavailable("vm '" + vm + "' did not release disk " + serial + " within " +
                         std::to_string(timeout.count()) + " ms");
    }
    removed_cv_.wait_for(lock, std::chrono::milliseconds(100),
                         [&] { return removed_seq_ != seen; });
    seen = removed_seq_;
  }
}

Status LibvirtHypervisor::AttachDisk(const HostRef& host, const std::string& vm,
                                     const DiskSpec& disk) {
  ASSIGN_OR_RETURN(VmLiveState state, GetState(host, vm));
  if (!state.exists) return NotFound("vm '" + vm + "' not found on host '" + host.name + "'");
  if (!state.managed) return NotManagedError(vm);
  if (const DiskSpec* cur = state.Disk(disk.serial)) {
    if (cur->path == disk.path) return Status::Ok();
    return FailedPrecondition("vm '" + vm + "' has another " + disk.serial + " disk attached (" +
                              cur->path + ")");
  }
  CONNECT_OR_RETURN(conn, host);
  ASSIGN_OR_RETURN(DomRef dom, LookupDomain(conn.get(), vm));
  unsigned flags = VIR_DOMAIN_AFFECT_CONFIG | (state.running ? VIR_DOMAIN_AFFECT_LIVE : 0);
  std::string xml = DiskXml(disk);
  if (virDomainAttachDeviceFlags(dom.get(), xml.c_str(), flags) != 0) {
    // The persistent definition may have it already (an earlier, interrupted attempt).
    if (!state.running ||
        virDomainAttachDeviceFlags(dom.get(), xml.c_str(), VIR_DOMAIN_AFFECT_LIVE) != 0) {
      return LibvirtError("attaching " + disk.serial + " to vm '" + vm + "'");
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<AgentChannel>> LibvirtHypervisor::OpenAgent(const HostRef& host,
                                                                   const std::string& vm) {
  CONNECT_OR_RETURN(conn, host);
  ASSIGN_OR_RETURN(DomRef dom, LookupManagedDomain(conn.get(), vm));
  if (virDomainIsActive(dom.get()) != 1) return Unavailable("vm '" + vm + "' is not running");
  ASSIGN_OR_RETURN(HostUri uri, ParseHostUri(host.uri));
  std::unique_ptr<ByteStream> bytes;
  if (uri.IsLocal()) {
    // QEMU's own socket, as libvirt reaches qemu-guest-agent: no libvirt stream that a
    // client killed mid-call could leave libvirtd to trip over.
    std::string xml = FreeString(virDomainGetXMLDesc(dom.get(), 0));
    if (xml.empty()) return LibvirtError("vm '" + vm + "' definition");
    ASSIGN_OR_RETURN(std::string path, ParseAgentSocketPath(xml));
    auto connected = ConnectUnixSocket(path);
    if (!connected.ok()) {
      return Unavailable("cannot open the agent channel of vm '" + vm +
                         "': " + connected.status().message());
    }
    bytes = std::move(*connected);
  } else {
    StreamRef stream(virStreamNew(conn.get(), VIR_STREAM_NONBLOCK));
    if (!stream) return LibvirtError("stream");
    if (virDomainOpenChannel(dom.get(), kAgentChannel, stream.get(), VIR_DOMAIN_CHANNEL_FORCE) !=
        0) {
      return Unavailable("cannot open the agent channel of vm '" + vm + "': " + LastError());
    }
    virConnectRef(conn.get());
    bytes = std::make_unique<LibvirtByteStream>(ConnRef(conn.get()), std::move(stream));
  }
  return std::unique_ptr<AgentChannel>(new LineAgentChannel(std::move(bytes), vm));
}

}  // namespace vdswap
