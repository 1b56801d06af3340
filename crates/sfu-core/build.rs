//! Embeds the browser SDK and the demo page (`web/`) into the binary: one
//! `(url path, bytes, content type)` entry per file, generated at build time.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("ts") => "text/plain; charset=utf-8",
        Some("md") => "text/markdown; charset=utf-8",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let web = manifest.join("../../web");
    println!("cargo:rerun-if-changed={}", web.display());
    let mut files = Vec::new();
    walk(&web, &mut files);
    let mut code = String::from("/// Embedded web assets: (URL path, bytes, content type).\npub static ASSETS: &[(&str, &[u8], &str)] = &[\n");
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let Ok(rel) = file.strip_prefix(&web) else {
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        // web/demo/x is served at /x, web/sdk/x at /sdk/x.
        let url = match rel.strip_prefix("demo/") {
            Some(r) => format!("/{r}"),
            None => format!("/{rel}"),
        };
        if url.ends_with(".test.mjs") {
            continue;
        }
        let _ = writeln!(
            code,
            "    ({url:?}, include_bytes!({:?}), {:?}),",
            file.canonicalize()
                .unwrap_or(file.clone())
                .display()
                .to_string(),
            content_type(file)
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("assets.rs");
    let _ = std::fs::write(out, code);
}
