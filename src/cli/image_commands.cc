#include <iostream>

#include "cli/commands.h"

namespace vdswap {

namespace {

void PrintImages(const Json& list) {
  Json rows = Json::array();
  for (auto img : list) {
    img["short"] = img.value("digest", "").substr(7, 12);
    img["size_mib"] = (img.value("size_bytes", uint64_t{0}) + (1 << 19)) >> 20;
    rows.push_back(img);
  }
  CliContext::PrintTable(rows, {{"DIGEST", "short"},
                                {"KIND", "kind"},
                                {"NAME", "name"},
                                {"VERSION", "version"},
                                {"SIZE(MiB)", "size_mib"}});
}

// image build SOURCE [--name NAME]
void AddBuild(CLI::App& image, CliContext& ctx) {
  struct BuildArgs {
    std::string source, name;
  };
  auto args = std::make_shared<BuildArgs>();
  auto* build = image.add_subcommand(
      "build",
      "Build a reproducible, content-addressed EROFS app image.\n"
      "SOURCE is a directory or tarball with /vdswap.json at its root, or a container image\n"
      "saved with `docker save` (docker-archive:FILE) or as an OCI layout archive\n"
      "(oci-archive:FILE); a container image without /vdswap.json gets one from its\n"
      "Entrypoint/Cmd/Env/WorkingDir. The same input always gives the same digest.");
  build
      ->add_option("SOURCE", args->source,
                   "DIR, FILE.tar[.gz], oci-archive:FILE or docker-archive:FILE")
      ->required();
  build->add_option("--name", args->name, "Image name (default: the manifest's name)");
  build->callback([&ctx, args] {
    std::string src = AbsolutePath(args->source);
    for (std::string prefix : {"oci-archive:", "docker-archive:"}) {
      if (args->source.rfind(prefix, 0) == 0) {
        src = prefix + AbsolutePath(args->source.substr(prefix.size()));
      }
    }
    auto out = ctx.Call(Method::kPost, "/v1/images/build",
                        Json{{"source", src}, {"name", args->name}}, true);
    if (!out.ok()) return;
    ctx.Print(*out, [&] {
      std::cout << (*out)["digest"].get<std::string>() << "  " << (*out)["name"].get<std::string>()
                << ":" << (*out)["version"].get<std::string>() << "  " << (*out)["size_bytes"]
                << " bytes, " << (*out)["files"] << " files\n";
    });
  });
}

// image import-os DISK --name NAME [...]
void AddImportOs(CLI::App& image, CliContext& ctx) {
  struct ImportArgs {
    std::string disk, kernel, initrd, cmdline, name, version, os_id, os_version;
    std::string firmware = "bios";
  };
  auto args = std::make_shared<ImportArgs>();
  auto* import = image.add_subcommand(
      "import-os",
      "Import a bootable OS disk (raw or qcow2, no backing file) as an OS image. Without\n"
      "--kernel the disk boots with its own bootloader (BIOS, or UEFI with --firmware efi);\n"
      "with it, directly (--initrd, --cmdline). Its os-release, read from an ext2/3/4 root\n"
      "(the whole disk or a partition of an MBR or GPT table), is checked against apps'\n"
      "`requires`; where it cannot be read (XFS, LVM, encrypted, qcow2), state it with\n"
      "--os-id and --os-version.");
  import->add_option("DISK", args->disk, "Disk image file")->required();
  import->add_option("--kernel", args->kernel, "Kernel for direct boot");
  import->add_option("--initrd", args->initrd, "Initrd for direct boot");
  import->add_option("--cmdline", args->cmdline, "Kernel command line");
  import->add_option("--name", args->name, "Image name")->required();
  import->add_option("--version", args->version, "Image version (default: os-release VERSION_ID)");
  import->add_option("--os-id", args->os_id,
                     "The OS's os-release ID, when vdswap cannot read it (with --os-version)");
  import->add_option("--os-version", args->os_version,
                     "The OS's os-release VERSION_ID (with --os-id)");
  import->add_option("--firmware", args->firmware, "bios (default) or efi (OVMF)")
      ->check(CLI::IsMember({"bios", "efi"}));
  import->callback([&ctx, args] {
    auto abs = [](const std::string& p) { return p.empty() ? p : AbsolutePath(p);
};
auto out = ctx.Call(Method::kPost, "/v1/images/import-os",
                    Json{{"disk", abs(args->disk)},
                         {"kernel", abs(args->kernel)},
                         {"initrd", abs(args->initrd)},
                         {"cmdline", args->cmdline},
                         {"name", args->name},
                         {"version", args->version},
                         {"os_id", args->os_id},
                         {"os_version", args->os_version},
                         {"firmware", args->firmware}},
                    true);
if (!out.ok()) return;
ctx.Print(*out, [&] {
  std::cout << (*out)["digest"].get<std::string>() << "  " << (*out)["name"].get<std::string>()
            << ":" << (*out)["version"].get<std::string>() << "\n";
});
}  // namespace
);
}  // namespace vdswap

// image ls, inspect, rm, gc
void AddManagement(CLI::App& image, CliContext& ctx) {
  image.add_subcommand("ls", "List images")->callback([&ctx] {
    auto out = ctx.Call(Method::kGet, "/v1/images");
    if (out.ok()) ctx.Print(*out, [&] { PrintImages(*out); });
  });

  auto ref = std::make_shared<std::string>();
  auto* inspect = image.add_subcommand(
      "inspect", "Show an image (REF: sha256:HEX, a digest prefix of 12+ hex, or NAME[:VERSION])");
  inspect->add_option("REF", *ref, "Image reference")->required();
  inspect->callback([&ctx, ref] {
    auto out = ctx.Call(Method::kGet, "/v1/images/" + UrlSegment(*ref));
    if (out.ok()) CliContext::PrintJson(*out);
  });

  auto* rm = image.add_subcommand("rm", "Delete an image no template uses");
  rm->add_option("REF", *ref, "Image reference")->required();
  rm->callback([&ctx, ref] {
    auto out = ctx.Call(Method::kDelete, "/v1/images/" + UrlSegment(*ref));
    if (out.ok()) ctx.Print(*out, [&] { std::cout << "removed " << *ref << "\n"; });
  });

  auto unused = std::make_shared<bool>(false);
  auto* gc = image.add_subcommand(
      "gc", "Delete leftovers of interrupted builds; with --unused, images no template uses");
  gc->add_flag("--unused", *unused, "Also delete images that no template uses");
  gc->callback([&ctx, unused] {
    auto out = ctx.Call(Method::kPost, "/v1/images/gc", Json{{"unused", *unused}});
    if (!out.ok()) return;
    ctx.Print(*out, [&] {
      for (const auto& r : (*out)["removed"]) {
        std::cout << "removed " << r.get<std::string>() << "\n";
      }
    });
  });
}

}  // namespace

void RegisterImageCommands(CLI::App& app, CliContext& ctx) {
  auto* image = app.add_subcommand("image", "Build, import and manage app and OS images");
  image->require_subcommand(1);
  AddBuild(*image, ctx);
  AddImportOs(*image, ctx);
  AddManagement(*image, ctx);
}

}  // namespace vdswap
