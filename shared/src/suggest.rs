//! "Did you mean ...?" for a mistyped field name, wherever seal reads fields: a Secret
//! manifest, its metadata, a `.seal.yaml`.

/// The known field that `typed` most likely meant: the same name up to case and `_`/`-`
/// (`string_data` for `stringData`), or a small typo away (`lables` for `labels`). Short
/// names allow one edit, longer ones two, so that an unrelated field of the same length
/// (`name` for `data`) is not offered.
pub fn closest<'a>(typed: &str, known: &[&'a str]) -> Option<&'a str> {
    let typed = fold(typed);
    known
        .iter()
        .map(|k| {
            let k_folded = fold(k);
            (edit_distance(&typed, &k_folded), k_folded.len(), *k)
        })
        .filter(|&(distance, len, _)| distance <= if len <= 5 { 1 } else { 2 })
        .min_by_key(|&(distance, _, _)| distance)
        .map(|(_, _, k)| k)
}

fn fold(name: &str) -> Vec<char> {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`: the optimal
/// string alignment distance, in which `nmae` is one edit from `name`.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let width = b.len() + 1;
    let mut d: Vec<usize> = (0..(a.len() + 1) * width).collect();
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::SECRET_FIELDS as SECRET;

    const RULE: &[&str] = &["path", "recipients", "recipientsFile", "scope"];

    #[test]
    fn case_separators_and_small_typos_are_caught() {
        assert_eq!(closest("stringdata", &SECRET), Some("stringData"));
        assert_eq!(closest("string_data", &SECRET), Some("stringData"));
        assert_eq!(closest("metdata", &SECRET), Some("metadata"));
        assert_eq!(closest("nmae", &["name", "namespace"]), Some("name"));
        assert_eq!(
            closest("lables", &["labels", "annotations"]),
            Some("labels")
        );
        assert_eq!(closest("recipient", RULE), Some("recipients"));
        assert_eq!(closest("recipients_file", RULE), Some("recipientsFile"));
        assert_eq!(closest("Path", RULE), Some("path"));
        assert_eq!(closest("rule", &["rules"]), Some("rules"));
    }

    #[test]
    fn unrelated_names_get_no_suggestion() {
        assert_eq!(closest("namespace", RULE), None);
        // A value line that slipped to the top level is not a typo of a short field.
        assert_eq!(closest("name", &SECRET), None);
        assert_eq!(closest("password", &SECRET), None);
        assert_eq!(closest("user", &SECRET), None);
    }
}
