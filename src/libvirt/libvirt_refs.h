#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <string>
#include <utility>

#include "core/status.h"

namespace vdswap {

// What the libvirt module's files share about libvirt's C API: owning references and
// errors as Status. Included by src/libvirt/*.cc only.

// Owns one reference to a libvirt object and frees it.
template <typename T, int (*Free)(T)>
class Ref {
 public:
  explicit Ref(T p = nullptr) : p_(p) {}
  Ref(Ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  Ref& operator=(Ref&& o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  Ref(const Ref&) = delete;
  Ref& operator=(const Ref&) = delete;
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

// The calling thread's last libvirt error message and code.
std::string LastError();
int LastErrorCode();
// `what: <last libvirt error>` with a code: kNotFound for a missing domain, pool or
// volume; kUnavailable for system, RPC and connection errors; kInternal otherwise.
Status LibvirtError(const std::string& what);
// Takes a string libvirt allocated (may be null: "") and frees it.
std::string FreeString(char* s);

}  // namespace vdswap
