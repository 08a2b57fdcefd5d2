//! The ResourceClaimTemplate a recommendation amounts to, as YAML a user can apply.
//!
//! Shapes are the ones the chart's DeviceClasses and the plugin accept (`deploy/examples/`,
//! `docs/plugin.md`): a MIG profile through `mig.gpu.tessera.dev` with a CEL selector on the
//! `profile` and `model` attributes, a share through `shared.gpu.tessera.dev` with capacity
//! requests and MPS enforcing them, a whole GPU through `gpu.tessera.dev`.

use std::fmt::Write;

use super::owner::Workload;
use super::partition::Holds;

const GIB: u64 = 1 << 30;

/// The ResourceClaimTemplate giving each pod of `workload` `count` devices like `target` on a
/// GPU named `gpu_model`, with the attributes and device classes of driver `driver`
/// (`gpu.tessera.dev` by default).
pub fn claim_template(
    workload: &Workload,
    gpu_model: &str,
    target: &Holds,
    count: u32,
    driver: &str,
) -> String {
    let mut out = String::new();
    let model = cel_string(gpu_model);
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "# {kind} {name}: set the pods' resourceClaims[].resourceClaimTemplateName to this\n\
         # template (or change the template they name to this spec).",
        kind = workload.kind,
        name = workload.name
    );
    let _ = writeln!(out, "apiVersion: resource.k8s.io/v1");
    let _ = writeln!(out, "kind: ResourceClaimTemplate");
    let _ = writeln!(out, "metadata:");
    let _ = writeln!(out, "  name: {}", template_name(&workload.name));
    let _ = writeln!(out, "  namespace: {}", workload.namespace);
    let _ = writeln!(out, "spec:");
    let _ = writeln!(out, "  spec:");
    let _ = writeln!(out, "    devices:");
    let _ = writeln!(out, "      requests:");
    let _ = writeln!(out, "        - name: gpu");
    let _ = writeln!(out, "          exactly:");
    let class = match target.device_type.as_str() {
        "mig" => format!("mig.{driver}"),
        "shared" => format!("shared.{driver}"),
        _ => driver.to_owned(),
    };
    let _ = writeln!(out, "            deviceClassName: {class}");
    if count > 1 {
        let _ = writeln!(out, "            count: {count}");
    }
    let _ = writeln!(out, "            selectors:");
    let _ = writeln!(out, "              - cel:");
    let _ = writeln!(out, "                  expression: >-");
    match (target.device_type.as_str(), &target.profile) {
        ("mig", Some(profile)) => {
            let _ = writeln!(
                out,
                "                    device.attributes['{driver}'].profile == '{}' &&",
                cel_string(profile)
            );
            let _ = writeln!(
                out,
                "                    device.attributes['{driver}'].model == '{model}'"
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "                    device.attributes['{driver}'].model == '{model}'"
            );
        }
    }
    if target.device_type == "shared" {
        let memory_gib = target.memory_bytes.unwrap_or(GIB).div_ceil(GIB);
        let compute = target.compute_percent.unwrap_or(1.0).ceil() as u32;
        let _ = writeln!(out, "            capacity:");
        let _ = writeln!(out, "              requests:");
        let _ = writeln!(out, "                memory: {memory_gib}Gi");
        let _ = writeln!(out, "                compute: \"{compute}\"");
        // MPS enforces what the share consumed (docs/plugin.md: without explicit limits the
        // thread percentage and pinned memory come from the allocation).
        let _ = writeln!(out, "      config:");
        let _ = writeln!(out, "        - requests: [gpu]");
        let _ = writeln!(out, "          opaque:");
        let _ = writeln!(out, "            driver: {driver}");
        let _ = writeln!(out, "            parameters:");
        let _ = writeln!(out, "              apiVersion: {driver}/v1alpha1");
        let _ = writeln!(out, "              kind: GpuConfig");
        let _ = writeln!(out, "              sharing:");
        let _ = writeln!(out, "                strategy: MPS");
    }
    out
}

/// `<workload>-gpu`, cut so it stays a DNS label (63 characters).
fn template_name(workload: &str) -> String {
    let base: String = workload.chars().take(59).collect();
    format!("{}-gpu", base.trim_end_matches('-'))
}

/// `s` inside a single-quoted CEL string literal.
fn cel_string(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}
