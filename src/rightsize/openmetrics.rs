//! The report as OpenMetrics text, for a textfile collector or a Pushgateway: how the
//! recommendations' savings reach Grafana with exactly the CLI's rules (MIG tables, headroom,
//! percentiles), which a PromQL estimate could not reproduce.

use std::fmt::Write;

use super::output::Report;

/// `report` as OpenMetrics text (gauges; values in dollars per month).
pub fn render_openmetrics(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# TYPE tessera_recommend_cost_dollars_per_month gauge\n\
         # HELP tessera_recommend_cost_dollars_per_month Average monthly GPU cost of a workload over the window, now (when=\"now\") and with the recommended partition (when=\"after\")"
    );
    for w in &report.workloads {
        let labels = workload_labels(w);
        for (when, value) in [
            ("now", w.cost.now_per_month),
            ("after", w.cost.after_per_month),
        ] {
            if let Some(v) = value {
                let _ = writeln!(
                    out,
                    "tessera_recommend_cost_dollars_per_month{{{labels},when=\"{when}\"}} {v}"
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "# TYPE tessera_recommend_savings_dollars_per_month gauge\n\
         # HELP tessera_recommend_savings_dollars_per_month What moving a workload to the recommended partition saves per month"
    );
    for w in &report.workloads {
        if let Some(v) = w.cost.savings_per_month {
            let _ = writeln!(
                out,
                "tessera_recommend_savings_dollars_per_month{{{}}} {v}",
                workload_labels(w)
            );
        }
    }
    let _ = writeln!(
        out,
        "# TYPE tessera_recommend_idle_cost_dollars_per_month gauge\n\
         # HELP tessera_recommend_idle_cost_dollars_per_month Monthly cost of a device held and unused for the whole idle window"
    );
    for i in &report.idle {
        if let Some(v) = i.cost_per_month {
            let _ = writeln!(
                out,
                "tessera_recommend_idle_cost_dollars_per_month{{namespace=\"{}\",owner_kind=\"{}\",owner_name=\"{}\",pod=\"{}\",claim=\"{}\",device=\"{}\",gpu_model=\"{}\"}} {v}",
                esc(&i.workload.namespace),
                esc(&i.workload.kind),
                esc(&i.workload.name),
                esc(&i.pod),
                esc(&i.claim),
                esc(&i.device),
                esc(&i.gpu_model)
            );
        }
    }
    let _ = writeln!(
        out,
        "# TYPE tessera_recommend_window_end_timestamp_seconds gauge\n\
         # HELP tessera_recommend_window_end_timestamp_seconds End of the window the recommendations cover\n\
         tessera_recommend_window_end_timestamp_seconds {}\n# EOF",
        report.window.end_unix
    );
    out
}

fn workload_labels(w: &super::output::WorkloadRow) -> String {
    format!(
        "namespace=\"{}\",owner_kind=\"{}\",owner_name=\"{}\",gpu_model=\"{}\",holds=\"{}\",action=\"{}\",target=\"{}\"",
        esc(&w.workload.namespace),
        esc(&w.workload.kind),
        esc(&w.workload.name),
        esc(&w.gpu_model),
        esc(&w.holds.label()),
        w.recommendation.action.label(),
        esc(&w
            .recommendation
            .target
            .as_ref()
            .map(|t| t.label())
            .unwrap_or_default())
    )
}

/// A label value escaped as the exposition format wants it.
fn esc(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
