//! The committed PTX (`cuda/ptx/*.ptx`, generated from `cuda/kernels/*.cu` by
//! `cuda/scripts/gen-ptx.sh`), embedded so that an ordinary build needs no NVIDIA toolchain.

/// One PTX module: the file stem and its text.
#[derive(Clone, Copy, Debug)]
pub struct Module {
    /// File stem in `cuda/ptx/` (`"adam"`), the module name a [`crate::backend::Backend`] takes.
    pub name: &'static str,
    /// The PTX text.
    pub ptx: &'static str,
    /// The PTX text followed by a NUL byte, as `cuModuleLoadData` reads it.
    pub ptx_nul: &'static str,
}

macro_rules! module {
    ($name:literal) => {
        Module {
            name: $name,
            ptx: include_str!(concat!("../ptx/", $name, ".ptx")),
            ptx_nul: concat!(include_str!(concat!("../ptx/", $name, ".ptx")), "\0"),
        }
    };
}

/// Every module, in a fixed order.
pub const MODULES: &[Module] = &[
    module!("adam"),
    module!("sgd"),
    module!("lion"),
    module!("reduce"),
    module!("step"),
    module!("quant"),
    module!("adam_mini"),
    module!("clip"),
];

/// The module named `name`.
pub fn module(name: &str) -> Option<&'static Module> {
    MODULES.iter().find(|m| m.name == name)
}

/// The `.visible .entry` names of a PTX text, in order.
pub fn entries(ptx: &str) -> impl Iterator<Item = &str> {
    ptx.lines().filter_map(|l| {
        l.strip_prefix(".visible .entry ")
            .map(|r| r.split('(').next().unwrap_or(r).trim())
    })
}
