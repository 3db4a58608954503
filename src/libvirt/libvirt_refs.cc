#include "libvirt/libvirt_refs.h"

#include <cstdlib>

namespace vdswap {

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

}  // namespace vdswap
