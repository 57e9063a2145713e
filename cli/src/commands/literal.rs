//! `seal encrypt --from-literal/--from-file` and `--raw`: sealing without a plaintext
//! manifest on disk, as `kubectl create secret generic` and kubeseal's `--raw` take values.

use std::collections::BTreeMap;
use std::path::Path;

use seal_shared::limits::MAX_SECRET_DATA_BYTES;
use seal_shared::manifest::PlainSecret;
use seal_shared::names;
use zeroize::Zeroizing;

use crate::failure::{Context, Failure, Result};
use crate::files::{Input, check_path_arg};

/// The Secret that `--from-literal` and `--from-file` describe. `literals` are wiped once
/// copied; the process list has seen them anyway, which is why the docs steer to files.
pub fn secret(
    literals: Vec<Zeroizing<String>>,
    files: &[String],
    name: Option<&str>,
    namespace: Option<&str>,
    type_: Option<&str>,
) -> Result<PlainSecret> {
    let Some(name) = name else {
        return Err(
            Failure::new("--from-literal/--from-file need the Secret's name")
                .hint("pass --name NAME (and -n NAMESPACE), as for kubectl create secret generic"),
        );
    };
    let mut data: BTreeMap<String, Zeroizing<Vec<u8>>> = BTreeMap::new();
    let mut add = |key: String, value: Zeroizing<Vec<u8>>, flag: &str| -> Result<()> {
        names::check_data_key(&key)
            .map_err(|e| Failure::new(e).hint("a key is letters, digits, '-', '_' and '.'"))
            .within(flag)?;
        if data.contains_key(&key) {
            return Err(Failure::new(format!("key {key:?} is given twice"))
                .hint("give each key once across --from-literal and --from-file"))
            .within(flag);
        }
        data.insert(key, value);
        Ok(())
    };
    for literal in literals {
        // Never quoted in an error: the part after `=` is a secret value.
        let Some((key, value)) = literal.split_once('=') else {
            return Err(Failure::new("--from-literal: expected KEY=VALUE, found no `=`")
                .hint("write --from-literal KEY=VALUE; better, --from-file KEY=PATH keeps the value out of the process list"));
        };
        add(
            key.to_owned(),
            Zeroizing::new(value.as_bytes().to_vec()),
            "--from-literal",
        )?;
    }
    for spec in files {
        // kubectl's forms: KEY=PATH, or PATH with the file's name as the key.
        let (key, path) = match spec.split_once('=') {
            Some((key, path)) => (key.to_owned(), Path::new(path)),
            None => {
                let path = Path::new(spec.as_str());
                let key = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (key, path)
            }
        };
        check_path_arg(path, "--from-file")?;
        let value = Input::File(path.to_path_buf())
            .read_value()
            .within("--from-file")?;
        add(key, value, "--from-file")?;
    }
    check_size(&data)?;
    Ok(PlainSecret {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        type_: type_.map(str::to_owned),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        immutable: None,
        data,
    })
}

/// The one-item Secret for `--raw`: the value is all of stdin, byte for byte.
pub fn raw(key: &str, name: Option<&str>, namespace: Option<&str>) -> Result<PlainSecret> {
    names::check_data_key(key)
        .map_err(|e| Failure::new(e).hint("a key is letters, digits, '-', '_' and '.'"))
        .within("--key")?;
    let value = Input::Stdin.read_value()?;
    let mut data = BTreeMap::new();
    data.insert(key.to_owned(), value);
    check_size(&data)?;
    Ok(PlainSecret {
        name: name.map(str::to_owned),
        namespace: namespace.map(str::to_owned),
        type_: None,
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        immutable: None,
        data,
    })
}

fn check_size(data: &BTreeMap<String, Zeroizing<Vec<u8>>>) -> Result<()> {
    let size: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_SECRET_DATA_BYTES {
        return Err(Failure::new(format!(
            "the Secret's data is {size} bytes, more than the {MAX_SECRET_DATA_BYTES} bytes Kubernetes allows"
        ))
        .hint("Kubernetes refuses Secrets over 1 MiB; split the Secret"));
    }
    Ok(())
}
