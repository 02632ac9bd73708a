//! Medians of repeated runs, the ratios to the references, and the Markdown reports.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

/// Repeated runs of one measurement.
pub struct Series {
    key: String,
    target: String,
    scenario: String,
    mode: String,
    connections: usize,
    runs: Vec<Value>,
}

impl Series {
    pub fn new(key: &str, target: &str, scenario: &str, mode: &str, connections: usize) -> Self {
        Self {
            key: key.into(),
            target: target.into(),
            scenario: scenario.into(),
            mode: mode.into(),
            connections,
            runs: Vec::new(),
        }
    }

    pub fn push(&mut self, run: Value) {
        self.runs.push(run);
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "key": self.key,
            "target": self.target,
            "scenario": self.scenario,
            "mode": self.mode,
            "connections": self.connections,
            "median": median_object(&self.runs),
            "runs": self.runs,
        })
    }
}

/// `{"median": …, "runs": runs}`.
pub fn with_median(runs: Vec<Value>) -> Value {
    json!({"median": median_object(&runs), "runs": runs})
}

pub fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// The median of every numeric field (nested objects too) over `runs`.
fn median_object(runs: &[Value]) -> Value {
    fn walk(runs: &[&Value]) -> Value {
        let Some(first) = runs.iter().find_map(|r| r.as_object()) else {
            return Value::Null;
        };
        let mut out = Map::new();
        for (name, value) in first {
            let values: Vec<&Value> = runs.iter().filter_map(|r| r.get(name)).collect();
            if value.is_number() {
                if let Some(m) = median(values.iter().filter_map(|v| v.as_f64()).collect()) {
                    out.insert(name.clone(), json!(m));
                }
            } else if value.is_object() {
                out.insert(name.clone(), walk(&values));
            }
        }
        Value::Object(out)
    }
    walk(&runs.iter().collect::<Vec<_>>())
}

fn find<'a>(series: &'a [Value], key: &str) -> Option<&'a Value> {
    series.iter().find(|s| s["key"] == key)
}

fn med(series: &[Value], key: &str, field: &str) -> Option<f64> {
    find(series, key)?["median"][field].as_f64()
}

/// The gateway against the references, and against the targets of the issue.
pub fn summary(all: &[Series]) -> Value {
    let series: Vec<Value> = all.iter().map(Series::to_json).collect();
    let s = &series[..];
    let diff = |field: &str| {
        Some(med(s, "inquiry_rate/gateway", field)? - med(s, "inquiry_rate/direct", field)?)
    };
    let ratio = |a: &str, fa: &str, b: &str, fb: &str| Some(med(s, a, fa)? / med(s, b, fb)?);
    let rss = series
        .iter()
        .filter(|x| x["mode"] == "saturation")
        .filter_map(|x| x["median"]["rss_max_mib"].as_f64())
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let added_p99 = diff("p99_ms");
    let vs_nginx = ratio(
        "inquiry_sat/gateway",
        "throughput",
        "inquiry_sat/nginx",
        "throughput",
    );
    let vs_pgbench = ratio(
        "flow_sat/gateway",
        "throughput",
        "insert/pgbench",
        "throughput",
    );
    let sqlite_inquiry = ratio(
        "inquiry_sat/sqlite",
        "throughput",
        "inquiry_sat/gateway",
        "throughput",
    );
    let sqlite_flow = ratio(
        "flow_sat/sqlite",
        "throughput",
        "flow_sat/gateway",
        "throughput",
    );
    // The same measured with wrk, every target driven by the same lean client: what the
    // targets are judged on where wrk ran.
    let wrk_vs_nginx = ratio(
        "wrk/inquiry/gateway",
        "throughput",
        "wrk/inquiry/nginx",
        "throughput",
    );
    let wrk_purchases_vs_pgbench = ratio(
        "wrk/purchase/gateway",
        "throughput",
        "wrk/insert/pgbench",
        "throughput",
    );
    let wrk_sqlite_inquiry = ratio(
        "wrk/inquiry/sqlite",
        "throughput",
        "wrk/inquiry/gateway",
        "throughput",
    );
    let wrk_sqlite_purchase = ratio(
        "wrk/purchase/sqlite",
        "throughput",
        "wrk/purchase/gateway",
        "throughput",
    );
    // "Within 2×" of Postgres: at least half its throughput (faster is fine).
    let within_2x = |r: Option<f64>| r.map(|r| r >= 0.5);
    json!({
        "inquiry_added_latency_ms": {
            "p50": diff("p50_ms"), "p90": diff("p90_ms"), "p99": added_p99, "p999": diff("p999_ms"),
        },
        "inquiry_throughput_vs_direct": ratio("inquiry_sat/gateway", "throughput", "inquiry_sat/direct", "throughput"),
        "inquiry_throughput_vs_nginx": vs_nginx,
        "payments_per_s_vs_pgbench": vs_pgbench,
        "payment_flow_vs_direct": ratio("flow_sat/gateway", "throughput", "flow_sat/direct", "throughput"),
        "sqlite_vs_postgres_inquiry": sqlite_inquiry,
        "sqlite_vs_postgres_flow": sqlite_flow,
        "rss_max_mib_at_saturation": rss,
        "wrk_inquiry_vs_direct": ratio("wrk/inquiry/gateway", "throughput", "wrk/inquiry/direct", "throughput"),
        "wrk_nginx_vs_direct": ratio("wrk/inquiry/nginx", "throughput", "wrk/inquiry/direct", "throughput"),
        "wrk_inquiry_vs_nginx": wrk_vs_nginx,
        "wrk_purchases_vs_pgbench": wrk_purchases_vs_pgbench,
        "wrk_sqlite_vs_postgres_inquiry": wrk_sqlite_inquiry,
        "wrk_sqlite_vs_postgres_purchase": wrk_sqlite_purchase,
        "targets": [
            {"name": "inquiry throughput (wrk), fraction of nginx (b)", "goal": "≥ 25%",
             "value": wrk_vs_nginx, "unit": "fraction", "met": wrk_vs_nginx.map(|v| v >= 0.25)},
            {"name": "purchases/s (wrk), fraction of pgbench one-row inserts (c), same clients", "goal": "≥ 20%",
             "value": wrk_purchases_vs_pgbench, "unit": "fraction", "met": wrk_purchases_vs_pgbench.map(|v| v >= 0.20)},
            {"name": "SQLite inquiry throughput vs Postgres (wrk)", "goal": "≥ 0.5×",
             "value": wrk_sqlite_inquiry, "unit": "ratio", "met": within_2x(wrk_sqlite_inquiry)},
            {"name": "inquiry p99 added latency over (a) at the fixed rate", "goal": "≤ 2 ms",
             "value": added_p99, "unit": "ms", "met": added_p99.map(|v| v <= 2.0)},
            {"name": "inquiry saturation throughput (loadgen), fraction of nginx (b)", "goal": "≥ 25%",
             "value": vs_nginx, "unit": "fraction", "met": vs_nginx.map(|v| v >= 0.25)},
            {"name": "payment flows/s (loadgen), fraction of pgbench one-row inserts (c), same clients", "goal": "≥ 20%",
             "value": vs_pgbench, "unit": "fraction", "met": vs_pgbench.map(|v| v >= 0.20)},
            {"name": "SQLite inquiry throughput vs Postgres", "goal": "≥ 0.5× (within 2×)",
             "value": sqlite_inquiry, "unit": "ratio", "met": within_2x(sqlite_inquiry)},
            {"name": "SQLite payment-flow throughput vs Postgres", "goal": "≥ 0.5× (within 2×)",
             "value": sqlite_flow, "unit": "ratio", "met": within_2x(sqlite_flow)},
            {"name": "gateway RSS at saturation (max)", "goal": "< 100 MB",
             "value": rss, "unit": "MiB", "met": rss.map(|v| v * 1.048576 < 100.0)},
        ],
    })
}

fn num(value: &Value, digits: usize) -> String {
    match value.as_f64() {
        Some(v) => format!("{v:.digits$}"),
        None => "–".into(),
    }
}

fn describe(doc: &Value) -> String {
    let m = &doc["machine"];
    let pg = &doc["postgres"];
    let s = &doc["settings"];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Generated {} by `{}` (git {}).\n",
        doc["generated_at"].as_str().unwrap_or("?"),
        doc["command"].as_str().unwrap_or("?"),
        doc["git"].as_str().unwrap_or("?"),
    );
    let _ = writeln!(
        out,
        "**Machine:** {} cores ({}), {} GiB memory, Linux {}; 1-minute load average {} at \
         the start, {} at the end. **Postgres** {} on 127.0.0.1 \
         (fsync {}, synchronous_commit {}, wal_sync_method {}, shared_buffers {}): every \
         transaction durably committed before its answer. nginx: {}. pgbench: {}.\n",
        m["cores"],
        m["cpu_model"].as_str().unwrap_or("?"),
        m["memory_gib"],
        m["kernel"].as_str().unwrap_or("?"),
        num(&doc["load_average_at_start"], 2),
        num(&doc["load_average_at_end"], 2),
        pg["server_version"].as_str().unwrap_or("?"),
        pg["fsync"].as_str().unwrap_or("?"),
        pg["synchronous_commit"].as_str().unwrap_or("?"),
        pg["wal_sync_method"].as_str().unwrap_or("?"),
        pg["shared_buffers"].as_str().unwrap_or("?"),
        doc["nginx"].as_str().unwrap_or("not installed"),
        doc["pgbench"].as_str().unwrap_or("not installed"),
    );
    if doc["kind"] == "soak" {
        return out;
    }
    let _ = writeln!(
        out,
        "**Method:** every figure is the median of {} runs; a saturation run measures {} s, a \
         fixed-rate run {} s, each after {} s of warm-up. Gateway: {}. Simulator: {}, simulated \
         upstream latency {} ms. Load generator: {}. Fixed-rate latency is corrected for \
         coordinated omission (taken from the scheduled send time whenever the connection was \
         still busy then). Everything shares the same cores.\n",
        s["repeats"],
        s["duration_s"],
        s["latency_duration_s"],
        s["warmup_s"],
        s["gateway"].as_str().unwrap_or("?"),
        s["simulator"].as_str().unwrap_or("?"),
        s["upstream_latency_ms"],
        s["load_generator"].as_str().unwrap_or("?"),
    );
    out
}

fn yes_no(value: &Value) -> &'static str {
    match value.as_bool() {
        Some(true) => "**yes**",
        Some(false) => "**no**",
        None => "not measured",
    }
}

pub fn comparison_markdown(doc: &Value) -> String {
    let mut out = String::from("# Benchmark: the gateway against its references\n\n");
    out.push_str(&describe(doc));
    out.push_str(
        "## Results\n\nLatencies in ms per operation (a payment flow is an inquiry then its \
         payment); ops/s counts operations completed without error. CPU is µs per operation, \
         warm-up included: the server (the gateway process, or nginx's processes), all \
         Postgres processes (the whole server), and the harness process (load generator and \
         simulator).\n\n\
         Last column: cores busy with anything else on the machine during the run (other \
         users' work: noise).\n\n\
         | scenario | mode | target | conns | ops/s | p50 | p90 | p99 | p99.9 | errors | gateway RSS MiB | CPU server / Postgres / harness | other cores |\n\
         | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |\n",
    );
    let empty = Vec::new();
    for series in doc["series"].as_array().unwrap_or(&empty) {
        let m = &series["median"];
        let is_pgbench = series["key"]
            .as_str()
            .is_some_and(|k| k.ends_with("insert/pgbench"));
        let dash = |v: &Value, d| if is_pgbench { "–".into() } else { num(v, d) };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} / {} | {} |",
            series["scenario"].as_str().unwrap_or(""),
            series["mode"].as_str().unwrap_or(""),
            series["target"].as_str().unwrap_or(""),
            series["connections"],
            num(&m["throughput"], 0),
            dash(&m["p50_ms"], 2),
            dash(&m["p90_ms"], 2),
            dash(&m["p99_ms"], 2),
            dash(&m["p999_ms"], 2),
            num(&m["errors"], 0),
            num(&m["rss_max_mib"], 1),
            num(&m["cpu_server_us_per_op"], 0),
            dash(&m["cpu_postgres_us_per_op"], 0),
            dash(&m["cpu_harness_us_per_op"], 0),
            dash(&m["other_cpu_cores"], 2),
        );
    }
    let r = &doc["ratios"];
    let added = &r["inquiry_added_latency_ms"];
    let _ = writeln!(
        out,
        "\n## Against the references\n\n\
         - Inquiry latency added over (a), direct to the simulator, at the fixed rate: \
         p50 +{} ms, p90 +{} ms, p99 +{} ms, p99.9 +{} ms.\n\
         - Inquiry saturation throughput: {} of (a) direct, {} of (b) nginx.\n\
         - Payment flows per second: {} of (a) direct, {} of (c) pgbench's one-row inserts per \
         second.\n\
         - SQLite mode throughput relative to Postgres mode: inquiry {}, payment flow {}.\n\
         - With wrk (one thread; the same client for every target): inquiries through the \
         gateway {} of (a) direct and {} of (b) nginx (nginx itself {} of direct); purchases {} of \
         (c) pgbench's one-row inserts at the same client count; SQLite relative to Postgres: \
         inquiry {}, purchase {}.\n",
        num(&added["p50"], 2),
        num(&added["p90"], 2),
        num(&added["p99"], 2),
        num(&added["p999"], 2),
        pct(&r["inquiry_throughput_vs_direct"]),
        pct(&r["inquiry_throughput_vs_nginx"]),
        pct(&r["payment_flow_vs_direct"]),
        pct(&r["payments_per_s_vs_pgbench"]),
        times(&r["sqlite_vs_postgres_inquiry"]),
        times(&r["sqlite_vs_postgres_flow"]),
        pct(&r["wrk_inquiry_vs_direct"]),
        pct(&r["wrk_inquiry_vs_nginx"]),
        pct(&r["wrk_nginx_vs_direct"]),
        pct(&r["wrk_purchases_vs_pgbench"]),
        times(&r["wrk_sqlite_vs_postgres_inquiry"]),
        times(&r["wrk_sqlite_vs_postgres_purchase"]),
    );
    out.push_str("| target | goal | measured | met |\n| --- | --- | ---: | --- |\n");
    for target in r["targets"].as_array().unwrap_or(&empty) {
        let value = match target["unit"].as_str() {
            Some("fraction") => pct(&target["value"]),
            Some("ratio") => times(&target["value"]),
            Some(unit) => format!("{} {unit}", num(&target["value"], 2)),
            None => num(&target["value"], 2),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            target["name"].as_str().unwrap_or(""),
            target["goal"].as_str().unwrap_or(""),
            value,
            yes_no(&target["met"]),
        );
    }
    out.push_str(
        "\n## Database work per gateway operation (Postgres, `pg_stat_database` of the block's \
         database, warm-ups included)\n\n\
         A commit is any transaction, read-only ones included (each autocommitted statement is \
         one).\n\n\
         | block | operations | commits/op | rows inserted/op | rows updated/op |\n\
         | --- | ---: | ---: | ---: | ---: |\n",
    );
    if let Some(work) = doc["db_work"].as_object() {
        for (block, w) in work {
            let _ = writeln!(
                out,
                "| {block} | {} | {} | {} | {} |",
                num(&w["ops"], 0),
                num(&w["commits_per_op"], 2),
                num(&w["rows_inserted_per_op"], 2),
                num(&w["rows_updated_per_op"], 2),
            );
        }
    }
    out.push_str(
        "\n## What the database was doing (Postgres backends of the block, sampled every 50 ms \
         during the measured gateway runs)\n\n\
         Average number of backends in each state: `CPU` is running; `Lock:transactionid` and \
         `Lock:tuple` wait for a row another transaction holds; `LWLock:WALWrite` and \
         `IO:WALSync` wait for a commit to be flushed; `Client:ClientRead` waits for the \
         gateway.\n",
    );
    if let Some(work) = doc["db_work"].as_object() {
        for (block, w) in work {
            let _ = writeln!(
                out,
                "\n**{block}** ({} active backends on average, {} samples):\n",
                num(&w["active_backends"], 1),
                num(&w["wait_samples"], 0)
            );
            for wait in w["waits"].as_array().unwrap_or(&empty) {
                let _ = writeln!(
                    out,
                    "- {} `{}`",
                    num(&wait["backends"], 2),
                    wait["what"].as_str().unwrap_or("")
                );
            }
        }
    }
    notes(&mut out, doc);
    let _ = writeln!(
        out,
        "\nWall time of the whole command: {} s.",
        num(&doc["wall_seconds"], 0)
    );
    out
}

fn pct(value: &Value) -> String {
    match value.as_f64() {
        Some(v) => format!("{:.1}%", v * 100.0),
        None => "not measured".into(),
    }
}

fn times(value: &Value) -> String {
    match value.as_f64() {
        Some(v) => format!("{v:.2}×"),
        None => "not measured".into(),
    }
}

fn notes(out: &mut String, doc: &Value) {
    let empty = Vec::new();
    let notes = doc["notes"].as_array().unwrap_or(&empty);
    if !notes.is_empty() {
        out.push_str("\n## Notes\n\n");
        for note in notes {
            let _ = writeln!(out, "- {}", note.as_str().unwrap_or(""));
        }
    }
}

pub fn growth_markdown(doc: &Value) -> String {
    let mut out = String::from("# Benchmark: how cost grows with the work\n\n");
    out.push_str(&describe(doc));
    out.push_str(
        "## Search and export against the number of stored transactions\n\n\
         Rows are inserted with SQL (`bench/growth/fill.sql`: 60% inquiries, 30% payments, 10% \
         purchases over 30 days), then `VACUUM ANALYZE`. Search: one connection, sequential \
         requests for 2 s, latency in ms. Export: the whole table as CSV (finance key). Payment \
         flow: one connection, sequential inquiry + payment, ms.\n\n\
         | rows | first page p50 / p99 | filtered page p50 / p99 | operator page p50 / p99 | export s | export rows/s | export µs/row | flow p50 / p99 | payment p50 / p99 |\n\
         | ---: | --- | --- | --- | ---: | ---: | ---: | --- | --- |\n",
    );
    let empty = Vec::new();
    for size in doc["sizes"].as_array().unwrap_or(&empty) {
        let pair = |name: &str| {
            let m = &size[name]["median"];
            format!("{} / {}", num(&m["p50_ms"], 2), num(&m["p99_ms"], 2))
        };
        let export = &size["export"]["median"];
        let flow = &size["payment flow, 1 connection"]["median"];
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} / {} | {} / {} |",
            size["rows"],
            pair("first page (50)"),
            pair("page, filtered type+status"),
            pair("operator's first page (50)"),
            num(&export["seconds"], 2),
            num(&export["rows_per_s"], 0),
            num(&export["us_per_row"], 1),
            num(&flow["p50_ms"], 2),
            num(&flow["p99_ms"], 2),
            num(&flow["payment_p50_ms"], 2),
            num(&flow["payment_p99_ms"], 2),
        );
    }
    out.push_str(
        "\n## Gateway processes on one Postgres (saturation, connections spread over the \
         processes)\n\n\
         | processes | inquiry ops/s | inquiry p50 / p99 | payment flows/s | flow p50 / p99 | RSS MiB (sum) |\n\
         | ---: | ---: | --- | ---: | --- | ---: |\n",
    );
    for row in doc["processes"].as_array().unwrap_or(&empty) {
        let i = &row["inquiry"]["median"];
        let f = &row["flow"]["median"];
        let _ = writeln!(
            out,
            "| {} | {} | {} / {} | {} | {} / {} | {} |",
            row["processes"],
            num(&i["throughput"], 0),
            num(&i["p50_ms"], 2),
            num(&i["p99_ms"], 2),
            num(&f["throughput"], 0),
            num(&f["p50_ms"], 2),
            num(&f["p99_ms"], 2),
            num(&i["rss_max_mib"], 1),
        );
    }
    notes(&mut out, doc);
    let _ = writeln!(
        out,
        "\nWall time of the command: {} s.",
        num(&doc["wall_seconds"], 0)
    );
    out
}

pub fn soak_markdown(doc: &Value) -> String {
    let mut out = String::from("# Benchmark: gateway memory over a saturation soak\n\n");
    out.push_str(&describe(doc));
    out.push_str(
        "Inquiry saturation on Postgres, in consecutive 10 s slices; RSS read from \
         /proc/PID/status at the end of each slice (and its maximum, sampled every 200 ms).\n\n\
         | t (s) | RSS MiB | max RSS MiB in slice | inquiries/s | p99 ms | errors |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let empty = Vec::new();
    let points = doc["points"].as_array().unwrap_or(&empty);
    for p in points {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            num(&p["t_s"], 0),
            num(&p["rss_mib"], 1),
            num(&p["rss_max_mib"], 1),
            num(&p["throughput"], 0),
            num(&p["p99_ms"], 2),
            p["errors"],
        );
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = writeln!(
            out,
            "\nRSS after the first slice {} MiB, at the end {} MiB.",
            num(&first["rss_mib"], 1),
            num(&last["rss_mib"], 1)
        );
    }
    notes(&mut out, doc);
    out
}

/// `reconciliation-latest.md`: the deposit reconciliation of one busy day.
pub fn reconciliation_markdown(doc: &Value) -> String {
    let mut out = String::from("# Benchmark: the deposit reconciliation of a busy day\n\n");
    out.push_str(&describe(doc));
    let _ = writeln!(
        out,
        "## `GET /v1/reports/reconciliation?date={}`\n\n\
         A fresh database of each kind holds one business day of succeeded payments and \
         purchases on one balance chain, with a top-up before every 10,000th from the 5,000th \
         (inserted with SQL, then `ANALYZE`). The gateway (a separate process) reads the day \
         with its margin, cuts it by chain position and reconciles it; one connection, one \
         request untimed first, then the timed ones; seconds until the whole body is read. \
         Goal: under {} s.\n\n\
         | database | rows | median s | runs | min / max s | first s | body MiB | breaks | checked | met |\n\
         | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | --- |",
        doc["date"].as_str().unwrap_or("?"),
        doc["goal_seconds"]
    );
    let empty = Vec::new();
    let goal = doc["goal_seconds"].as_f64().unwrap_or(2.0);
    for entry in doc["backends"].as_array().unwrap_or(&empty) {
        let seconds: Vec<f64> = entry["runs"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .filter_map(|r| r["seconds"].as_f64())
            .collect();
        let min = seconds.iter().copied().fold(f64::INFINITY, f64::min);
        let max = seconds.iter().copied().fold(0.0, f64::max);
        let median = &entry["median"]["seconds"];
        let met = median.as_f64().is_some_and(|m| m < goal) && entry["check"]["ok"] == true;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.3} / {:.3} | {} | {} | {} | {} | {} |",
            entry["backend"].as_str().unwrap_or("?"),
            entry["rows"],
            num(median, 3),
            seconds.len(),
            min,
            max,
            num(&entry["first_seconds"], 3),
            num(&entry["check"]["body_mib"], 1),
            entry["check"]["breaks"],
            if entry["check"]["ok"] == true {
                "every row counted, the seeded top-ups found"
            } else {
                "**no**"
            },
            if met { "yes" } else { "no" },
        );
    }
    let notes = doc["notes"].as_array().cloned().unwrap_or_default();
    if !notes.is_empty() {
        out.push_str("\nNotes:\n\n");
        for note in notes {
            let _ = writeln!(out, "- {}", note.as_str().unwrap_or(""));
        }
    }
    let _ = writeln!(
        out,
        "\nWall time of the command: {} s.",
        num(&doc["wall_seconds"], 0)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn medians_of_nested_fields() {
        let runs = vec![
            json!({"a": 1.0, "b": {"c": 5.0}, "s": "x"}),
            json!({"a": 3.0, "b": {"c": 1.0}, "s": "y"}),
            json!({"a": 2.0, "b": {"c": 3.0}, "s": "z"}),
        ];
        assert_eq!(median_object(&runs), json!({"a": 2.0, "b": {"c": 3.0}}));
    }
}
