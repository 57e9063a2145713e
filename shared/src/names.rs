//! Kubernetes naming rules for the parts of a placement. Enforcing them before sealing also
//! keeps the binding's line-based encoding unambiguous: none of them may hold a newline.

/// A Secret data key: `[-._a-zA-Z0-9]+`, at most 253 characters.
pub fn check_data_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 253 {
        return Err("must be 1 to 253 characters".into());
    }
    if key == "." || key == ".." {
        return Err("must not be '.' or '..'".into());
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("may contain only letters, digits, '-', '_' and '.'".into());
    }
    Ok(())
}

/// An object name (DNS subdomain): lowercase letters, digits, '-' and '.', at most 253.
pub fn check_object_name(name: &str) -> Result<(), String> {
    check_dns(name, 253, true)
}

/// A namespace (DNS label): lowercase letters, digits and '-', at most 63.
pub fn check_namespace(namespace: &str) -> Result<(), String> {
    check_dns(namespace, 63, false)
}

fn check_dns(value: &str, max: usize, dots: bool) -> Result<(), String> {
    let allowed =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (dots && b == b'.');
    let edge_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > max {
        return Err(format!("{value:?} must be 1 to {max} characters"));
    }
    if !bytes.iter().all(|&b| allowed(b)) || !edge_ok(bytes.first()) || !edge_ok(bytes.last()) {
        let what = if dots {
            "lowercase letters, digits, '-' and '.'"
        } else {
            "lowercase letters, digits and '-'"
        };
        return Err(format!(
            "{value:?} is not a valid name: use {what}, starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_keys() {
        for ok in ["a", "tls.crt", "A_b-c.d", ".dockerconfigjson"] {
            assert!(check_data_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "a/b", "a\nb", "é"] {
            assert!(check_data_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_and_namespaces() {
        assert!(check_object_name("my-app.v1").is_ok());
        assert!(check_namespace("my-app.v1").is_err());
        for bad in ["", "-a", "a-", "A", "a_b", "a\n"] {
            assert!(check_object_name(bad).is_err(), "{bad:?}");
            assert!(check_namespace(bad).is_err(), "{bad:?}");
        }
        assert!(check_namespace(&"a".repeat(64)).is_err());
    }
}
