//! What the chart's queries (its alerts and its Grafana dashboard) ask Prometheus for, and
//! what the operator's /metrics offers, so that tests can compare the two: a query that
//! names a metric or label nobody exports shows nothing and never fires.

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Labels Prometheus adds to every series it scrapes through the chart's ServiceMonitor.
pub const TARGET_LABELS: [&str; 4] = ["job", "namespace", "instance", "pod"];

/// Words of PromQL that are not metric names although nothing follows them in parentheses.
const KEYWORDS: [&str; 24] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "and",
    "or",
    "unless",
    "atan2",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
];

/// Keywords followed by a parenthesised list of label names.
const LABEL_LISTS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric and label names a PromQL expression refers to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Names {
    pub metrics: BTreeSet<String>,
    pub labels: BTreeSet<String>,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The names in `expr`. Grafana's `$variables` are not names; string literals are skipped.
pub fn names(expr: &str) -> Result<Names> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Names::default();
    // What each open bracket is: '{' a selector, 'l' a label list, '(' or '[' anything else.
    let mut open: Vec<char> = Vec::new();
    let mut list_follows = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || c == '.' {
            // A number or a duration such as 10m.
            while i < chars.len() && (is_ident(chars[i]) || chars[i] == '.') {
                i += 1;
            }
            continue;
        }
        if is_ident_start(c) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if start > 0 && chars[start - 1] == '$' {
                continue;
            }
            let next = chars[i..].iter().find(|c| !c.is_whitespace()).copied();
            match open.last() {
                Some('{') | Some('l') => {
                    names.labels.insert(word);
                }
                _ if LABEL_LISTS.contains(&word.as_str()) => list_follows = true,
                _ if KEYWORDS.contains(&word.as_str()) || next == Some('(') => {}
                _ => {
                    names.metrics.insert(word);
                }
            }
            continue;
        }
        match c {
            '(' if list_follows => {
                open.push('l');
                list_follows = false;
            }
            '(' | '[' | '{' => open.push(c),
            ')' | ']' | '}' => {
                open.pop()
                    .with_context(|| format!("unbalanced {c} in {expr}"))?;
            }
            _ => {}
        }
        i += 1;
    }
    if !open.is_empty() {
        bail!("unclosed bracket in {expr}");
    }
    Ok(names)
}

/// Every query of a Grafana dashboard: its panels' targets (rows' panels included) and its
/// query variables. `label_values(selector, label)` is Grafana's, not PromQL: its selector
/// is a query and its label a label name.
pub fn dashboard_queries(dashboard: &Value) -> Result<Vec<Names>> {
    let mut queries = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    while let Some(panel) = panels.pop() {
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .with_context(|| format!("a target without expr in panel {}", panel["title"]))?;
            queries.push(names(expr)?);
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["type"] == "query")
    {
        let query = variable["query"]["query"]
            .as_str()
            .or(variable["query"].as_str())
            .with_context(|| format!("variable {} has no query", variable["name"]))?;
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .with_context(|| format!("variable {}: not label_values(...)", variable["name"]))?;
        let (selector, label) = inner.rsplit_once(',').with_context(|| {
            format!("variable {}: label_values needs a label", variable["name"])
        })?;
        let mut found = names(selector)?;
        found.labels.insert(label.trim().to_owned());
        queries.push(found);
    }
    Ok(queries)
}

/// Every alert's expression in rendered chart objects.
pub fn alert_queries(docs: &[Value]) -> Result<Vec<(String, Names)>> {
    let mut queries = Vec::new();
    for rule in docs
        .iter()
        .filter(|d| d["kind"] == "PrometheusRule")
        .flat_map(|d| d["spec"]["groups"].as_array().into_iter().flatten())
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
    {
        let alert = rule["alert"].as_str().context("a rule without alert")?;
        let expr = rule["expr"].as_str().context("a rule without expr")?;
        queries.push((alert.to_owned(), names(expr)?));
    }
    Ok(queries)
}

/// The series names and label names in a Prometheus text exposition.
pub fn exported(scrape: &str) -> Result<Names> {
    let mut found = Names::default();
    for line in scrape
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        found.metrics.insert(line[..end].to_owned());
        let Some(rest) = line[end..].strip_prefix('{') else {
            continue;
        };
        let mut chars = rest.chars();
        loop {
            let label: String = chars.by_ref().take_while(|c| *c != '=').collect();
            if label.is_empty() {
                break;
            }
            found
                .labels
                .insert(label.trim_start_matches(',').to_owned());
            if chars.next() != Some('"') {
                bail!("unexpected label value in {line}");
            }
            let mut escaped = false;
            for c in chars.by_ref() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => break,
                    _ => {}
                }
            }
            match chars.next() {
                Some(',') => {}
                Some('}') => break,
                _ => bail!("unexpected end of labels in {line}"),
            }
        }
    }
    Ok(found)
}

/// What `query` names that `exported` (and the scrape's target labels) lack.
pub fn missing(query: &Names, exported: &Names) -> Vec<String> {
    let metrics = query
        .metrics
        .iter()
        .filter(|m| !exported.metrics.contains(*m))
        .map(|m| format!("metric {m}"));
    let labels = query
        .labels
        .iter()
        .filter(|l| !exported.labels.contains(*l) && !TARGET_LABELS.contains(&l.as_str()))
        .map(|l| format!("label {l}"));
    metrics.chain(labels).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn names_in_promql() -> Result<()> {
        let found = names(
            r#"max by (reason) (seal_sealed_secrets{ready="false", job="$job"} and on (instance) (seal_leader{job="x"} == 1)) > 0"#,
        )?;
        assert_eq!(found.metrics, set(&["seal_leader", "seal_sealed_secrets"]));
        assert_eq!(found.labels, set(&["instance", "job", "ready", "reason"]));

        let found = names(
            "histogram_quantile(0.99, sum by (le) (rate(seal_unseal_duration_seconds_bucket{job=\"$job\"}[$__rate_interval]))) * 1000 or vector(0)",
        )?;
        assert_eq!(found.metrics, set(&["seal_unseal_duration_seconds_bucket"]));
        assert_eq!(found.labels, set(&["job", "le"]));
        assert!(names("sum(rate(x[5m])").is_err());
        Ok(())
    }

    #[test]
    fn names_in_an_exposition() -> Result<()> {
        let found = exported(
            "# HELP seal_leader x\n# TYPE seal_leader gauge\nseal_leader 1\nseal_unseals_total{outcome=\"failed\",reason=\"a \\\"b\\\", c\"} 2\n# EOF\n",
        )?;
        assert_eq!(found.metrics, set(&["seal_leader", "seal_unseals_total"]));
        assert_eq!(found.labels, set(&["outcome", "reason"]));
        Ok(())
    }
}
