#include "libvirt/libvirt_hypervisor.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <fstream>
#include <random>
#include <vector>

#include "core/log.h"
#include "core/sha256.h"
#include "hypervisor/host_uri.h"

namespace vdswap {

namespace {

using Clock = std::chrono::steady_clock;

// RAII for libvirt object references.
template <typename T, int (*Free)(T)>
class Ref {
 public:
  explicit Ref(T p = nullptr) : p_(p) {}
  Ref(Ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  Ref& operator=(Ref&& o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~Ref() {
    if (p_) Free(p_);
  }
  T get() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  T p_;
};
using ConnRef = Ref<virConnectPtr, virConnectClose>;
using DomRef = Ref<virDomainPtr, virDomainFree>;
using PoolRef = Ref<virStoragePoolPtr, virStoragePoolFree>;
using VolRef = Ref<virStorageVolPtr, virStorageVolFree>;
using StreamRef = Ref<virStreamPtr, virStreamFree>;
using NetRef = Ref<virNetworkPtr, virNetworkFree>;

std::string LastError() {
  const char* m = virGetLastErrorMessage();
  return m ? m : "unknown libvirt error";
}

int LastErrorCode() {
  virErrorPtr e = virGetLastError();
  return e ? e->code : VIR_ERR_OK;
}

Status LibvirtError(const std::string& what) {
  int code = LastErrorCode();
  std::string msg = what + ": " + LastError();
  if (code == VIR_ERR_NO_DOMAIN || code == VIR_ERR_NO_STORAGE_POOL ||
      code == VIR_ERR_NO_STORAGE_VOL) {
    return NotFound(msg);
  }
  if (code == VIR_ERR_SYSTEM_ERROR || code == VIR_ERR_RPC || code == VIR_ERR_NO_CONNECT ||
      code == VIR_ERR_AGENT_UNRESPONSIVE) {
    return Unavailable(msg);
  }
  return Internal(msg);
}

std::string FreeString(char* s) {
  std::string out = s ? s : "";
  free(s);
  return out;
}

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

// The agent channel over a non-blocking libvirt stream, with JSON-lines framing and
// request ids so replies to abandoned requests are skipped.
class LibvirtAgentChannel : public AgentChannel {
  static constexpr auto kAliveCheckEvery = std::chrono::milliseconds(500);

 public:
  LibvirtAgentChannel(ConnRef conn, StreamRef stream, std::string vm)
      : conn_(std::move(conn)), stream_(std::move(stream)), vm_(std::move(vm)) {
    std::random_device rd;
    prefix_ = std::to_string(rd()) + "-";
  }
  ~LibvirtAgentChannel() override {
    if (stream_) virStreamAbort(stream_.get());
  }

  Result<Json> Call(AgentOp op, const Json& fields, std::chrono::milliseconds timeout) override {
    auto deadline = Clock::now() + timeout;
    Json id = prefix_ + std::to_string(++seq_);
    std::string line = EncodeRequest(id, op, fields) + "\n";
    std::string op_name(AgentOpName(op));
    size_t off = 0;
    while (off < line.size()) {
      int n = virStreamSend(stream_.get(), line.data() + off, line.size() - off);
      if (n > 0) {
        off += static_cast<size_t>(n);
      } else if (n == -2 && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      } else {
        return Unavailable("agent of vm '" + vm_ + "': cannot send '" + op_name +
                           "': " + LastError());
      }
    }
    char chunk[4096];
    auto next_alive_check = Clock::now() + kAliveCheckEvery;
    while (true) {
      size_t nl;
      while ((nl = buf_.find('\n')) != std::string::npos) {
        auto reply = DecodeReply(std::string_view(buf_).substr(0, nl));
        buf_.erase(0, nl + 1);
        // A late reply to an earlier request, or noise.
        if (!reply.ok() || reply->id != id) continue;
        if (reply->result.ok()) return std::move(reply->result);
        const Status& err = reply->result.status();
        return Status(err.code(), "agent of vm '" + vm_ + "': " + err.message());
      }
      if (Clock::now() >= deadline) {
        return Unavailable("agent of vm '" + vm_ + "' did not answer '" + op_name + "' within " +
                           std::to_string(timeout.count()) + " ms");
      }
      int n = virStreamRecv(stream_.get(), chunk, sizeof chunk);
      if (n > 0) {
        buf_.append(chunk, static_cast<size_t>(n));
      } else if (n == -2) {
        // Nothing yet. A stream whose libvirtd went away (restarted) reads like this
        // forever: check the connection now and then rather than wait out the deadline.
        if (Clock::now() >= next_alive_check && virConnectIsAlive(conn_.get()) != 1) {
          return Unavailable("agent channel of vm '" + vm_ + "' lost during '" + op_name +
                             "': the connection to libvirtd closed");
        }
        if (Clock::now() >= next_alive_check) next_alive_check = Clock::now() + kAliveCheckEvery;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      } else {
        return Unavailable("agent channel of vm '" + vm_ +
                           "' closed: " + (n == 0 ? std::string("end of stream") : LastError()));
      }
    }
  }

 private:
  ConnRef conn_;
  StreamRef stream_;
  std::string vm_;
  std::string prefix_;
  uint64_t seq_ = 0;
  std::string buf_;
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
  RETURN_IF_ERROR(DeleteVolume(host, volume));  // a partial upload of an earlier attempt
  CONNECT_OR_RETURN(conn, host);
  ASSIGN_OR_RETURN(PoolRef pool, LookupPool(conn.get(), host));
  std::string xml = VolumeXml(volume, size, "raw");
  VolRef vol(virStorageVolCreateXML(pool.get(), xml.c_str(), 0));
  if (!vol) return LibvirtError("creating volume '" + volume + "'");
  StreamRef stream(virStreamNew(conn.get(), 0));
  auto fail = [&](const std::string& what) {
    Status s = LibvirtError(what);
    if (stream) virStreamAbort(stream.get());
    virStorageVolDelete(vol.get(), 0);
    return s;
  };
  if (virStorageVolUpload(vol.get(), stream.get(), 0, size, 0) != 0) return fail("upload");
  std::vector<char> buf(1 << 20);
  uint64_t sent = 0;
  auto last = Clock::now();
  while (sent < size) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    size_t n = static_cast<size_t>(in.gcount());
    if (n == 0) return fail("reading '" + local_path + "'");
    for (size_t off = 0; off < n;) {
      int w = virStreamSend(stream.get(), buf.data() + off, n - off);
      if (w < 0) return fail("uploading '" + volume + "'");
      off += static_cast<size_t>(w);
    }
    sent += n;
    if (progress && Clock::now() - last > std::chrono::seconds(1)) {
      last = Clock::now();
      progress({{"phase", "upload"},
                {"volume", volume},
                {"bytes", sent},
                {"message", "uploading " + volume + " to " + host.name + ": " +
                                std::to_string(sent * 100 / size) + "%"}});
    }
  }
  if (virStreamFinish(stream.get()) != 0) return fail("finishing upload of '" + volume + "'");
  return sent;
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

Result<uint64_t> LibvirtHypervisor::VolumeAllocation(const HostRef& host,
                                                     const std::string& volume) {
  CONNECT_OR_RETURN(conn, host);
  ASSIGN_OR_RETURN(PoolRef pool, LookupPool(conn.get(), host));
  VolRef vol(virStorageVolLookupByName(pool.get(), volume.c_str()));
  if (!vol) return NotFound("volume '" + volume + "' not on host '" + host.name + "'");
  virStorageVolInfo info{};
  if (virStorageVolGetInfo(vol.get(), &info) != 0) return LibvirtError("volume info");
  return static_cast<uint64_t>(info.allocation);
}

Result<std::string> LibvirtHypervisor::VolumeSha256(const HostRef& host,
                                                    const std::string& volume) {
  CONNECT_OR_RETURN(conn, host);
  ASSIGN_OR_RETURN(PoolRef pool, LookupPool(conn.get(), host));
  VolRef vol(virStorageVolLookupByName(pool.get(), volume.c_str()));
  if (!vol) return NotFound("volume '" + volume + "' not on host '" + host.name + "'");
  StreamRef stream(virStreamNew(conn.get(), 0));
  if (!stream) return LibvirtError("stream");
  // Length 0: the whole volume.
  if (virStorageVolDownload(vol.get(), stream.get(), 0, 0, 0) != 0) {
    return LibvirtError("reading volume '" + volume + "' on host '" + host.name + "'");
  }
  Sha256 sha;
  std::vector<char> buf(size_t{256} << 10);
  while (true) {
    int n = virStreamRecv(stream.get(), buf.data(), buf.size());
    if (n < 0) {
      Status s = LibvirtError("reading volume '" + volume + "' on host '" + host.name + "'");
      virStreamAbort(stream.get());
      return s;
    }
    if (n == 0) break;
    sha.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  if (virStreamFinish(stream.get()) != 0) return LibvirtError("volume stream");
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
  if (!dom) return Status::Ok();
  if (!IsManaged(dom.get())) return NotManagedError(vm);
  if (virDomainIsActive(dom.get()) == 1 && virDomainDestroy(dom.get()) != 0) {
    return LibvirtError("destroying vm '" + vm + "'");
  }
  if (virDomainUndefine(dom.get()) != 0) return LibvirtError("undefining vm '" + vm + "'");
  return Status::Ok();
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
  StreamRef stream(virStreamNew(conn.get(), 0));
  if (!stream) return LibvirtError("stream");
  if (virStorageVolDownload(vol.get(), stream.get(), offset, size - offset, 0) != 0) {
    return LibvirtError("reading the console log of vm '" + vm + "'");
  }
  std::vector<char> buf(size_t{64} << 10);
  while (true) {
    int n = virStreamRecv(stream.get(), buf.data(), buf.size());
    if (n < 0) {
      Status s = LibvirtError("reading the console log of vm '" + vm + "'");
      virStreamAbort(stream.get());
      return s;
    }
    if (n == 0) break;
    out.append(buf.data(), static_cast<size_t>(n));
  }
  if (virStreamFinish(stream.get()) != 0) return LibvirtError("console log stream");
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
  StreamRef stream(virStreamNew(conn.get(), VIR_STREAM_NONBLOCK));
  if (!stream) return LibvirtError("stream");
  if (virDomainOpenChannel(dom.get(), kAgentChannel, stream.get(), VIR_DOMAIN_CHANNEL_FORCE) != 0) {
    return Unavailable("cannot open the agent channel of vm '" + vm + "': " + LastError());
  }
  virConnectRef(conn.get());
  return std::unique_ptr<AgentChannel>(
      new LibvirtAgentChannel(ConnRef(conn.get()), std::move(stream), vm));
}

}  // namespace vdswap
