//! The report for people: one line per workload, the YAML of each change, the idle list.

use std::fmt::Write;

use super::output::{Action, Report};

const GIB: f64 = (1u64 << 30) as f64;

/// `report` as aligned text.
pub fn render_table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "GPU right-sizing over {:.0} h ending {} (headroom {:.0} %, targets: gpu{})",
        report.window.seconds / 3600.0,
        report.window.end,
        report.settings.headroom * 100.0,
        report
            .settings
            .partition_kinds
            .iter()
            .map(|k| format!(", {k}"))
            .collect::<String>()
    );
    let _ = writeln!(out);
    let header = [
        "WORKLOAD",
        "GPU",
        "HOLDS",
        "PODS",
        "MEM P95/PEAK GiB",
        "COMPUTE P95/PEAK %",
        "ACTION",
        "TARGET",
        "$/MONTH NOW",
        "$/MONTH AFTER",
        "PRICE",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for w in &report.workloads {
        let name = format!(
            "{}/{} {}{}",
            w.workload.namespace,
            w.workload.kind,
            w.workload.name,
            if w.workload.guessed { " (guessed)" } else { "" }
        );
        rows.push(vec![
            name,
            w.gpu_model.clone(),
            w.holds.label(),
            w.pods.to_string(),
            format!(
                "{:.1}/{:.1}",
                w.memory.p95_bytes / GIB,
                w.memory.peak_bytes / GIB
            ),
            w.compute.map_or_else(
                || "not measured".to_owned(),
                |c| format!("{:.1}/{:.1}", c.p95_percent, c.peak_percent),
            ),
            w.recommendation.action.label().to_owned(),
            w.recommendation
                .target
                .as_ref()
                .map_or_else(|| "-".to_owned(), |t| t.label()),
            money(w.cost.now_per_month),
            money(w.cost.after_per_month),
            format!(
                "${:.2}/GPU-h {}",
                w.cost.price_per_gpu_hour,
                w.cost.price_source.label()
            ),
        ]);
    }
    write_aligned(&mut out, &rows);
    let _ = writeln!(
        out,
        "\nTotal: ${:.2}/month now, ${:.2}/month after, saves ${:.2}/month",
        report.totals.now_per_month, report.totals.after_per_month, report.totals.savings_per_month
    );

    for w in &report.workloads {
        if !w.notes.is_empty()
            || w.claim_template.is_some()
            || w.recommendation.action == Action::Unknown
        {
            let _ = writeln!(
                out,
                "\n== {}/{} {} on {}: {} — {}",
                w.workload.namespace,
                w.workload.kind,
                w.workload.name,
                w.gpu_model,
                w.recommendation.action.label(),
                w.recommendation.reason
            );
            for note in &w.notes {
                let _ = writeln!(out, "   note: {note}");
            }
            if let Some(yaml) = &w.claim_template {
                let _ = writeln!(out);
                out.push_str(yaml);
            }
        }
    }

    let _ = writeln!(
        out,
        "\nIdle allocations (held {:.0} h or more, compute at most {} %):",
        report.settings.idle_for_seconds / 3600.0,
        report.settings.idle_threshold_percent
    );
    if report.idle.is_empty() {
        let _ = writeln!(out, "none");
    } else {
        let mut rows: Vec<Vec<String>> = vec![
            [
                "WORKLOAD",
                "POD",
                "CLAIM",
                "DEVICE",
                "HOLDS",
                "PEAK MEM GiB",
                "$/MONTH",
            ]
            .iter()
            .map(|h| (*h).to_owned())
            .collect(),
        ];
        for i in &report.idle {
            rows.push(vec![
                format!(
                    "{}/{} {}",
                    i.workload.namespace, i.workload.kind, i.workload.name
                ),
                i.pod.clone(),
                i.claim.clone(),
                i.device.clone(),
                i.holds.label(),
                format!("{:.1}", i.peak_memory_bytes / GIB),
                money(i.cost_per_month),
            ]);
        }
        write_aligned(&mut out, &rows);
        let _ = writeln!(
            out,
            "Idle total: ${:.2}/month",
            report.totals.idle_per_month
        );
    }
    out
}

fn money(v: Option<f64>) -> String {
    v.map_or_else(|| "unknown".to_owned(), |v| format!("{v:.2}"))
}

fn write_aligned(out: &mut String, rows: &[Vec<String>]) {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
}
