//! Embeds the admin console (`admin/`): every file under it becomes an entry of
//! `ADMIN_ASSETS` (path, bytes), so a page added there is served without a list to keep.

use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("admin");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    let mut out = String::from("pub(crate) static ADMIN_ASSETS: &[(&str, &[u8])] = &[\n");
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let rel = file.strip_prefix(&root).expect("under admin/");
        let rel: Vec<_> = rel.iter().map(|p| p.to_string_lossy()).collect();
        out.push_str(&format!(
            "    ({:?}, include_bytes!({:?})),\n",
            rel.join("/"),
            file.display().to_string()
        ));
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("admin_assets.rs");
    std::fs::write(dest, out).expect("write admin_assets.rs");
}

/// Every file under `dir`, skipping hidden ones (editor files, `.DS_Store`).
fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        // A link could point anywhere (a key file, `/etc`): only what is really under
        // admin/ is embedded. `file_type` does not follow links.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_symlink() {
            println!(
                "cargo:warning=admin/: {} is a link and is not embedded",
                path.display()
            );
            continue;
        }
        if kind.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}
