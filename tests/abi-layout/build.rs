//! Run bindgen over the committed `include/adamant.h` (never over a freshly generated one:
//! the point is to check what C users compile against).
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let header = root.join("include/adamant.h");
    println!("cargo:rerun-if-changed={}", header.display());
    let bindings = bindgen::Builder::default()
        .header(header.to_str().expect("utf-8 path"))
        .allowlist_item("adamant_.*")
        .allowlist_var("ADAMANT_.*")
        .clang_arg("-std=c11")
        .layout_tests(true)
        .derive_default(false)
        .generate()
        .expect("bindgen could not read include/adamant.h (is libclang-dev installed?)");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("adamant_h.rs");
    bindings.write_to_file(&out).expect("write bindings");
}
