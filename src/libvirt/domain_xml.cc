#include "libvirt/domain_xml.h"

#include <fcntl.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <memory>
#include <sstream>

namespace vdswap {

namespace {

std::string Esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string TargetDev(const std::string& serial) {
  if (serial == kOsSerial) return "vda";
  if (serial == kAppSerial) return "vdb";
  if (serial == kAppSerialB) return "vdd";  // the second app slot (make-before-break)
  return "vdc";
}

struct XmlDocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
struct XPathCtxFree {
  void operator()(xmlXPathContext* c) const { xmlXPathFreeContext(c); }
};
struct XPathObjFree {
  void operator()(xmlXPathObject* o) const { xmlXPathFreeObject(o); }
};

std::string Attr(xmlNode* node, const char* name) {
  xmlChar* v = xmlGetProp(node, reinterpret_cast<const xmlChar*>(name));
  if (v == nullptr) return "";
  std::string s(reinterpret_cast<char*>(v));
  xmlFree(v);
  return s;
}

std::string Text(xmlNode* node) {
  xmlChar* v = xmlNodeGetContent(node);
  if (v == nullptr) return "";
  std::string s(reinterpret_cast<char*>(v));
  xmlFree(v);
  return s;
}

xmlNode* Child(xmlNode* node, const char* name) {
  for (xmlNode* c = node->children; c != nullptr; c = c->next) {
    if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, BAD_CAST name) == 0) return c;
  }
  return nullptr;
}

Result<std::unique_ptr<xmlDoc, XmlDocFree>> Parse(const std::string& xml) {
  std::unique_ptr<xmlDoc, XmlDocFree> doc(
      xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "libvirt.xml", nullptr,
                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
  if (!doc) return Internal("libvirt returned XML that does not parse");
  return doc;
}

// `read` applied to every element `xpath` selects in `xml`, in document order.
template <typename T>
Result<std::vector<T>> MapNodes(const std::string& xml, const char* xpath,
                                const std::function<T(xmlNode*)>& read) {
  ASSIGN_OR_RETURN(auto doc, Parse(xml));
  std::unique_ptr<xmlXPathContext, XPathCtxFree> ctx(xmlXPathNewContext(doc.get()));
  std::unique_ptr<xmlXPathObject, XPathObjFree> nodes(
      xmlXPathEvalExpression(BAD_CAST xpath, ctx.get()));
  std::vector<T> out;
  if (!nodes || !nodes->nodesetval) return out;
  for (int i = 0; i < nodes->nodesetval->nodeNr; ++i) {
    out.push_back(read(nodes->nodesetval->nodeTab[i]));
  }
  return out;
}

// The string value of XPath expression `expr` on `xml` ("" when it selects nothing).
Result<std::string> XPathString(const std::string& xml, const std::string& expr) {
  ASSIGN_OR_RETURN(auto doc, Parse(xml));
  std::unique_ptr<xmlXPathContext, XPathCtxFree> ctx(xmlXPathNewContext(doc.get()));
  std::unique_ptr<xmlXPathObject, XPathObjFree> value(
      xmlXPathEvalExpression(BAD_CAST expr.c_str(), ctx.get()));
  if (!value || value->type != XPATH_STRING || value->stringval == nullptr) return std::string();
  return std::string(reinterpret_cast<char*>(value->stringval));
}

}  // namespace

Result<Accel> ResolveAccel(const std::string& flag) {
  if (flag == "kvm") return Accel::kKvm;
  if (flag == "tcg") return Accel::kTcg;
  if (flag != "auto") return InvalidArgument("--accel must be auto, kvm or tcg");
  int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) return Accel::kTcg;
  close(fd);
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) == 0) {
      return line.find(" hypervisor") != std::string::npos ? Accel::kTcg : Accel::kKvm;
    }
  }
  return Accel::kTcg;
}

std::string DiskXml(const DiskSpec& d) {
  std::ostringstream x;
  x << "<disk type='file' device='disk'>"
    << "<driver name='qemu' type='" << Esc(d.format) << "' cache='none' discard='unmap'/>"
    << "<source file='" << Esc(d.path) << "'/>"
    << "<target dev='" << TargetDev(d.serial) << "' bus='virtio'/>"
    << "<serial>" << Esc(d.serial) << "</serial>" << (d.readonly ? "<readonly/>" : "") << "</disk>";
  return x.str();
}

std::string DomainXml(const VmSpec& spec, Accel accel, const std::string& console_log,
                      const std::string& uuid) {
  std::ostringstream x;
  x << "<domain type='" << (accel == Accel::kKvm ? "kvm" : "qemu") << "'>\n"
    << "  <name>" << Esc(spec.name) << "</name>\n"
    << (uuid.empty() ? "" : "  <uuid>" + Esc(uuid) + "</uuid>\n")
    << "  <metadata><vdswap:vm xmlns:vdswap='" << kVmMetadataNs << "'/></metadata>\n"
    << "  <memory unit='MiB'>" << spec.memory_mib << "</memory>\n"
    << "  <vcpu>" << spec.cpus << "</vcpu>\n"
    << (spec.efi ? "  <os firmware='efi'>\n" : "  <os>\n")
    << "    <type arch='x86_64' machine='pc'>hvm</type>\n";
  if (spec.efi) {
    // OVMF without Secure Boot (the guest's own bootloader need not be signed).
    x << "    <firmware><feature enabled='no' name='secure-boot'/></firmware>\n";
  }
  if (!spec.kernel.empty()) {
    x << "    <kernel>" << Esc(spec.kernel) << "</kernel>\n";
    if (!spec.initrd.empty()) x << "    <initrd>" << Esc(spec.initrd) << "</initrd>\n";
    x << "    <cmdline>" << Esc(spec.cmdline) << "</cmdline>\n";
  } else {
    x << "    <boot dev='hd'/>\n";
  }
  x << "  </os>\n"
    << "  <features><acpi/></features>\n"
    << (accel == Accel::kKvm ? "  <cpu mode='host-model'/>\n" : "")
    << "  <on_poweroff>destroy</on_poweroff>\n"
    << "  <on_reboot>restart</on_reboot>\n"
    << "  <on_crash>destroy</on_crash>\n"
    << "  <devices>\n";
  for (const DiskSpec* d : {&spec.os, &spec.app, &spec.data}) {
    if (!d->path.empty()) x << "    " << DiskXml(*d) << "\n";
  }
  for (const NicSpec& nic : spec.nics) {
    x << "    <interface type='network'><mac address='" << Esc(nic.mac) << "'/><source network='"
      << Esc(nic.network) << "'/><model type='virtio'/></interface>\n";
  }
  x << "    <channel type='unix'><target type='virtio' name='" << kAgentChannel << "'/></channel>\n"
    << "    <serial type='file'><source path='" << Esc(console_log)
    << "'/><target port='0'/></serial>\n"
    << "    <memballoon model='none'/>\n"
    << "  </devices>\n"
    << "</domain>\n";
  return x.str();
}

std::string PoolXml(const std::string& name, const std::string& path) {
  return "<pool type='dir'><name>" + Esc(name) + "</name><target><path>" + Esc(path) +
         "</path><permissions><mode>0711</mode></permissions></target></pool>";
}

std::string VolumeXml(const std::string& name, uint64_t capacity, const std::string& format,
                      const std::string& backing, const std::string& backing_format) {
  std::ostringstream x;
  x << "<volume><name>" << Esc(name) << "</name><capacity unit='bytes'>" << capacity
    << "</capacity><target><format type='" << Esc(format)
    << "'/><permissions><mode>0644</mode></permissions></target>";
  if (!backing.empty()) {
    x << "<backingStore><path>" << Esc(backing) << "</path><format type='" << Esc(backing_format)
      << "'/></backingStore>";
  }
  x << "</volume>";
  return x.str();
}

Result<std::vector<DiskSpec>> ParseDomainDisks(const std::string& xml) {
  return MapNodes<DiskSpec>(xml, "/domain/devices/disk", [](xmlNode* disk) {
    DiskSpec d;
    if (xmlNode* s = Child(disk, "serial")) d.serial = Text(s);
    if (xmlNode* s = Child(disk, "source")) d.path = Attr(s, "file");
    if (xmlNode* s = Child(disk, "driver")) d.format = Attr(s, "type");
    d.readonly = Child(disk, "readonly") != nullptr;
    return d;
  });
}

Result<std::vector<NicSpec>> ParseDomainNics(const std::string& xml) {
  return MapNodes<NicSpec>(xml, "/domain/devices/interface", [](xmlNode* nic) {
    NicSpec n;
    if (xmlNode* s = Child(nic, "source")) n.network = Attr(s, "network");
    if (xmlNode* m = Child(nic, "mac")) n.mac = Attr(m, "address");
    return n;
  });
}

Result<std::string> ParsePoolPath(const std::string& xml) {
  ASSIGN_OR_RETURN(std::string path, XPathString(xml, "string(/pool/target/path)"));
  if (path.empty()) return Internal("pool XML has no target path");
  return path;
}

Result<std::string> ParseVolumeBackingPath(const std::string& xml) {
  return XPathString(xml, "string(/volume/backingStore/path)");
}

Result<std::string> ParseAgentSocketPath(const std::string& xml) {
  const std::string channel =
      std::string("/domain/devices/channel[@type='unix'][target/@name='") + kAgentChannel + "']";
  ASSIGN_OR_RETURN(std::string path,
                   XPathString(xml, "string(" + channel + "/source[@mode='bind']/@path)"));
  if (path.empty()) {
    return FailedPrecondition("the domain has no unix socket for its agent channel");
  }
  return path;
}

}  // namespace vdswap
