//! Case bodies: each launches one kernel on a [`Backend`] and compares everything it wrote
//! (and the guard bytes around every buffer, which it must not write) with `adamant-core`,
//! bit for bit. A body returns the number of values compared.

use crate::values::{self, Family, Rng};
use crate::CaseError;
use adamant_core::reduce;
use adamant_core::rules::{adam, lion, sgd, Plan};
use adamant_core::step::{GradPrep, StochasticRounding};
use adamant_core::store::{canonicalize_f32, Element, StateElement};
use adamant_core::{bf16, f16, AdamConfig, Dtype, LionConfig, SgdConfig};
use adamant_cuda::args::{self, AdamHyper, LionHyper, ReduceEntry, Reduction, Rule, SgdHyper};
use adamant_cuda::args::{TensorEntry, FOUND_INF_SET};
use adamant_cuda::backend::{Backend, LaunchShape, ParamValue};
use adamant_cuda::ops;

const GUARD: u8 = 0xA5;
const TAIL: usize = 32;

/// A device buffer placed `pre` bytes after a 256-byte-aligned allocation, with guard bytes
/// before and after it.
struct DevBuf {
    base: u64,
    pre: usize,
    len: usize,
}

impl DevBuf {
    fn addr(&self) -> u64 {
        self.base + self.pre as u64
    }
}

fn be(e: adamant_cuda::backend::BackendError) -> CaseError {
    CaseError::Backend(e.to_string())
}

fn place(b: &mut dyn Backend, data: &[u8], pre: usize) -> Result<DevBuf, CaseError> {
    let region = pre + data.len() + TAIL;
    let base = b.alloc(region).map_err(be)?;
    let mut img = vec![GUARD; region];
    img[pre..pre + data.len()].copy_from_slice(data);
    b.upload(base, &img).map_err(be)?;
    Ok(DevBuf {
        base,
        pre,
        len: data.len(),
    })
}

/// The buffer's bytes after the launch; an error if a guard byte changed.
fn fetch(b: &mut dyn Backend, d: &DevBuf, what: &str) -> Result<Vec<u8>, CaseError> {
    let mut img = vec![0u8; d.pre + d.len + TAIL];
    b.download(d.base, &mut img).map_err(be)?;
    let outside = img[..d.pre]
        .iter()
        .chain(&img[d.pre + d.len..])
        .any(|&x| x != GUARD);
    if outside {
        return Err(CaseError::Mismatch(format!(
            "{what}: bytes outside the buffer were written"
        )));
    }
    Ok(img[d.pre..d.pre + d.len].to_vec())
}

fn compare(
    what: &str,
    got: &[u32],
    want: &[u32],
    ctx: &dyn Fn(usize) -> String,
) -> Result<(), CaseError> {
    if got.len() != want.len() {
        return Err(CaseError::Mismatch(format!("{what}: length differs")));
    }
    match (0..got.len()).find(|&i| got[i] != want[i]) {
        None => Ok(()),
        Some(i) => Err(CaseError::Mismatch(format!(
            "{what}[{i}]: device {:#x}, core {:#x} ({})",
            got[i],
            want[i],
            ctx(i)
        ))),
    }
}

fn typed<T: Element>(bits: &[u32]) -> Vec<T> {
    bits.iter().map(|&x| T::from_bits_u32(x)).collect()
}

fn bits<T: Element>(xs: &[T]) -> Vec<u32> {
    xs.iter().map(|x| x.to_bits_u32()).collect()
}

/// A rule with its hyper-parameters.
#[derive(Clone, Copy, Debug)]
pub enum RuleConfig {
    /// Adam / AdamW.
    Adam(AdamConfig),
    /// SGD.
    Sgd(SgdConfig),
    /// Lion.
    Lion(LionConfig),
}

impl RuleConfig {
    /// The rule.
    pub fn rule(&self) -> Rule {
        match self {
            RuleConfig::Adam(_) => Rule::Adam,
            RuleConfig::Sgd(_) => Rule::Sgd,
            RuleConfig::Lion(_) => Rule::Lion,
        }
    }
    fn states(&self) -> usize {
        match self {
            RuleConfig::Adam(_) => 2,
            RuleConfig::Sgd(c) => c.has_momentum() as usize,
            RuleConfig::Lion(_) => 1,
        }
    }
    fn hyper(&self) -> ParamValue {
        match self {
            RuleConfig::Adam(c) => ParamValue::from_struct(8, AdamHyper::from_config(c).to_bytes()),
            RuleConfig::Sgd(c) => ParamValue::from_struct(8, SgdHyper::from_config(c).to_bytes()),
            RuleConfig::Lion(c) => ParamValue::from_struct(8, LionHyper::from_config(c).to_bytes()),
        }
    }
    fn seed(&self) -> Option<u64> {
        match self {
            RuleConfig::Adam(c) => c.stochastic_rounding_seed,
            RuleConfig::Sgd(c) => c.stochastic_rounding_seed,
            RuleConfig::Lion(c) => c.stochastic_rounding_seed,
        }
    }
}

/// Where a tensor's buffers start, in elements past a 256-byte-aligned address:
/// (param, grad, state0, state1). All multiples of 8 elements of f32 keep the 128-bit path.
pub type Offsets = [usize; 4];

/// One tensor of an update case.
#[derive(Clone, Copy, Debug)]
pub struct UpdTensor {
    /// Elements.
    pub n: usize,
    /// Values of every buffer.
    pub family: Family,
    /// Buffer offsets in elements.
    pub offsets: Offsets,
    /// Per-tensor clip coefficient.
    pub clip: Option<f32>,
    /// Stochastic-rounding index of element 0.
    pub sr_index_offset: u64,
    /// Plant [`crate::sensitive::separating_inputs`] in blocks of 8 elements from the start
    /// (every lane of the 128-bit path) and in the last element.
    pub plant: bool,
}

/// One update launch.
#[derive(Clone, Debug)]
pub struct UpdateSpec {
    /// Rule and hyper-parameters.
    pub config: RuleConfig,
    /// (param, grad, state) storage types.
    pub dtypes: (Dtype, Dtype, Dtype),
    /// Tensors of the launch.
    pub tensors: Vec<UpdTensor>,
    /// Device table (true) or the single tensor by value.
    pub table: bool,
    /// Blocks; `None` = the launcher's choice ([`ops::shape_for`]).
    pub grid: Option<u32>,
    /// Learning rate (f32 on the device).
    pub lr: f32,
    /// Steps already applied.
    pub step0: u64,
    /// Loss scale (gradients divided by it).
    pub grad_scale: Option<f32>,
    /// `found_inf` word: `None` = no flag address; `Some(w)` = the word stored there.
    pub found_inf: Option<u32>,
    /// Data seed.
    pub seed: u64,
}

impl UpdateSpec {
    /// Kernel entry of this case.
    pub fn entry(&self) -> String {
        let (p, g, s) = self.dtypes;
        args::update_entry(self.config.rule(), p, g, s)
            .unwrap_or_default()
            .to_string()
    }
    /// Values compared (for scheduling).
    pub fn cost(&self) -> u64 {
        let n: usize = self.tensors.iter().map(|t| t.n).sum();
        (n * (2 + self.config.states())) as u64
    }
    /// Run on `b`.
    pub fn run(&self, b: &mut dyn Backend) -> Result<u64, CaseError> {
        macro_rules! with_s {
            ($P:ty, $G:ty) => {
                match self.dtypes.2 {
                    Dtype::F32 => update_body::<$P, $G, f32>(b, self),
                    Dtype::Bf16 => update_body::<$P, $G, bf16>(b, self),
                    Dtype::F16 => Err(CaseError::Backend("f16 states have no kernels".into())),
                }
            };
        }
        macro_rules! with_g {
            ($P:ty) => {
                match self.dtypes.1 {
                    Dtype::F32 => with_s!($P, f32),
                    Dtype::Bf16 => with_s!($P, bf16),
                    Dtype::F16 => with_s!($P, f16),
                }
            };
        }
        match self.dtypes.0 {
            Dtype::F32 => with_g!(f32),
            Dtype::Bf16 => with_g!(bf16),
            Dtype::F16 => with_g!(f16),
        }
    }
}

fn flag_set(w: u32) -> bool {
    w & 0x7FFF_FFFF != 0
}

fn update_body<P: Element, G: Element, S: StateElement>(
    b: &mut dyn Backend,
    u: &UpdateSpec,
) -> Result<u64, CaseError> {
    let mut rng = Rng(u.seed);
    let nstates = u.config.states();
    let (pt, gt, st) = (P::DTYPE, G::DTYPE, S::DTYPE);
    let (pw, gw, sw) = (pt.size(), gt.size(), st.size());
    // Host values (raw bits).
    let mut host = Vec::new();
    for t in &u.tensors {
        let p = values::buffer(&mut rng, pt, t.family, t.n, false);
        let g = values::buffer(&mut rng, gt, t.family, t.n, false);
        let s0 = if nstates >= 1 {
            values::buffer(&mut rng, st, t.family, t.n, false)
        } else {
            Vec::new()
        };
        let s1 = if nstates >= 2 {
            values::buffer(&mut rng, st, t.family, t.n, true)
        } else {
            Vec::new()
        };
        let mut h = [p, g, s0, s1];
        // Planted inputs are found with nearest rounding of the parameter. Lion's and SGD's
        // are planted under stochastic rounding too: a flipped `sign(c)` moves the f32
        // parameter by `lr`, which the rounding keeps whatever its random bits.
        let sr_param = u.config.seed().is_some()
            && pt == Dtype::Bf16
            && !matches!(u.config, RuleConfig::Lion(_) | RuleConfig::Sgd(_));
        if t.plant && !sr_param && t.n > 0 {
            let gp = GradPrep {
                grad_scale: u.grad_scale.unwrap_or(1.0),
                clip_coef: t.clip.unwrap_or(1.0),
            };
            let found = crate::sensitive::separating_inputs(
                &u.config,
                u.step0 + 1,
                u.lr as f64,
                gp,
                u.dtypes,
            );
            let mut at: Vec<(usize, usize)> = Vec::new();
            for j in 0..found.len() {
                for r in 0..8 {
                    at.push((8 * j + r, j));
                }
            }
            if !found.is_empty() {
                at.push((t.n - 1, u.seed as usize % found.len()));
            }
            for (i, j) in at {
                if i < t.n {
                    for (k, buf) in h.iter_mut().enumerate() {
                        if let Some(x) = buf.get_mut(i) {
                            *x = found[j][k];
                        }
                    }
                }
            }
        }
        host.push(h);
    }
    // Device buffers.
    let mut bufs: Vec<[Option<DevBuf>; 4]> = Vec::new();
    let mut entries = Vec::new();
    for (t, h) in u.tensors.iter().zip(&host) {
        let widths = [pw, gw, sw, sw];
        let mut d: [Option<DevBuf>; 4] = [None, None, None, None];
        for k in 0..4 {
            if k >= 2 && k - 2 >= nstates {
                continue;
            }
            d[k] = Some(place(
                b,
                &values::to_bytes([pt, gt, st, st][k], &h[k]),
                t.offsets[k] * widths[k],
            )?);
        }
        let clip_coef = match t.clip {
            Some(c) => place(b, &c.to_le_bytes(), 0)?.addr(),
            None => 0,
        };
        let a = |x: &Option<DevBuf>| x.as_ref().map_or(0, |d| d.addr());
        entries.push(TensorEntry {
            param: a(&d[0]),
            grad: a(&d[1]),
            state0: a(&d[2]),
            state1: a(&d[3]),
            n: t.n as u64,
            sr_index_offset: t.sr_index_offset,
            clip_coef,
            chunk_start: 0,
        });
        bufs.push(d);
    }
    let total = args::assign_chunks(&mut entries);
    let (table, one) = if u.table {
        let t = place(b, &args::table_bytes(&entries), 0)?;
        (t.addr(), TensorEntry::default())
    } else {
        if entries.len() != 1 {
            return Err(CaseError::Backend("a by-value case has one tensor".into()));
        }
        (0, entries[0])
    };
    let lr = place(b, &u.lr.to_le_bytes(), 0)?;
    let step = place(b, &u.step0.to_le_bytes(), 0)?;
    let scale = match u.grad_scale {
        Some(s) => place(b, &s.to_le_bytes(), 0)?.addr(),
        None => 0,
    };
    let flag = match u.found_inf {
        Some(w) => Some(place(b, &w.to_le_bytes(), 0)?),
        None => None,
    };
    let mut shape = ops::shape_for(total);
    if let Some(g) = u.grid {
        shape.grid.0 = g;
    }
    let params = [
        ParamValue::U64(table),
        ParamValue::from_struct(8, one.to_bytes()),
        ParamValue::U32(entries.len() as u32),
        ParamValue::U64(total),
        ParamValue::U64(lr.addr()),
        ParamValue::U64(step.addr()),
        ParamValue::U64(scale),
        ParamValue::U64(flag.as_ref().map_or(0, |d| d.addr())),
        u.config.hyper(),
    ];
    let entry = u.entry();
    b.launch(u.config.rule().name(), &entry, shape, &params)
        .map_err(be)?;

    // Core.
    let t = u.step0 + 1;
    let lr64 = u.lr as f64;
    let skip = u.found_inf.is_some_and(flag_set);
    let mut compared = 0u64;
    for (k, (spec, h)) in u.tensors.iter().zip(&host).enumerate() {
        let mut p: Vec<P> = typed(&h[0]);
        let g: Vec<G> = typed(&h[1]);
        let mut s0: Vec<S> = typed(&h[2]);
        let mut s1: Vec<S> = typed(&h[3]);
        if !skip {
            let prep = GradPrep {
                grad_scale: u.grad_scale.unwrap_or(1.0),
                clip_coef: spec.clip.unwrap_or(1.0),
            };
            let sr = u.config.seed().map(|seed| StochasticRounding {
                seed,
                step: t,
                index_offset: spec.sr_index_offset,
            });
            match u.config {
                RuleConfig::Adam(c) => {
                    let plan = Plan {
                        step: t,
                        scalars: c.scalars(lr64, t),
                        prep,
                        sr,
                    };
                    adam::adam_reference(&mut p, &g, &mut s0, &mut s1, &plan);
                }
                RuleConfig::Sgd(c) => {
                    let plan = Plan {
                        step: t,
                        scalars: c.scalars(lr64, t),
                        prep,
                        sr,
                    };
                    if c.has_momentum() {
                        sgd::sgd_reference(&mut p, &g, &mut s0, &plan);
                    } else {
                        // Without momentum the buffer is not used; the reference walks the
                        // common length, so give it one it ignores.
                        let mut unused: Vec<S> = vec![S::from_bits_u32(0); p.len()];
                        sgd::sgd_reference(&mut p, &g, &mut unused, &plan);
                    }
                }
                RuleConfig::Lion(c) => {
                    let plan = Plan {
                        step: t,
                        scalars: c.scalars(lr64),
                        prep,
                        sr,
                    };
                    lion::lion_reference(&mut p, &g, &mut s0, &plan);
                }
            }
        }
        let want: [Vec<u32>; 4] = [bits(&p), h[1].clone(), bits(&s0), bits(&s1)];
        let names = ["param", "grad", "state0", "state1"];
        for j in 0..4 {
            let Some(d) = &bufs[k][j] else { continue };
            let what = format!("tensor {k} {}", names[j]);
            let got = values::from_bytes(&fetch(b, d, &what)?, [pw, gw, sw, sw][j]);
            let ctx = |i: usize| {
                format!(
                    "in: p {:#x} g {:#x} s0 {:#x} s1 {:#x}",
                    h[0][i],
                    h[1][i],
                    h[2].get(i).copied().unwrap_or(0),
                    h[3].get(i).copied().unwrap_or(0)
                )
            };
            compare(&what, &got, &want[j], &ctx)?;
            compared += spec.n as u64;
        }
    }
    // lr, step and the flag are read, never written.
    let s = fetch(b, &step, "step")?;
    if s != u.step0.to_le_bytes() {
        return Err(CaseError::Mismatch(
            "the update kernel wrote the step count".into(),
        ));
    }
    if let (Some(d), Some(w)) = (&flag, u.found_inf) {
        if fetch(b, d, "found_inf")? != w.to_le_bytes() {
            return Err(CaseError::Mismatch(
                "the update kernel wrote found_inf".into(),
            ));
        }
    }
    fetch(b, &lr, "lr")?;
    Ok(compared)
}

/// One reduction launch: per-tile partials of every input.
#[derive(Clone, Debug)]
pub struct ReduceSpec {
    /// Sum, sum of squares or max-abs.
    pub kind: Reduction,
    /// Storage type of the values.
    pub dtype: Dtype,
    /// Inputs: (values, family, offset in elements).
    pub inputs: Vec<(usize, Family, usize)>,
    /// Device table (true) or one input by value.
    pub table: bool,
    /// Blocks; `None` = the launcher's choice.
    pub grid: Option<u32>,
    /// Data seed.
    pub seed: u64,
}

impl ReduceSpec {
    /// Kernel entry.
    pub fn entry(&self) -> String {
        args::reduce_entry(self.kind, self.dtype).to_string()
    }
    /// Values compared.
    pub fn cost(&self) -> u64 {
        self.inputs.iter().map(|i| i.0 as u64).sum()
    }
    /// Run on `b`.
    pub fn run(&self, b: &mut dyn Backend) -> Result<u64, CaseError> {
        match self.dtype {
            Dtype::F32 => reduce_body::<f32>(b, self),
            Dtype::Bf16 => reduce_body::<bf16>(b, self),
            Dtype::F16 => reduce_body::<f16>(b, self),
        }
    }
}

fn reduce_body<T: Element>(b: &mut dyn Backend, r: &ReduceSpec) -> Result<u64, CaseError> {
    let mut rng = Rng(r.seed);
    let dt = T::DTYPE;
    let mut xs = Vec::new();
    let mut outs = Vec::new();
    let mut entries = Vec::new();
    for &(n, fam, off) in &r.inputs {
        let x = values::buffer(&mut rng, dt, fam, n, false);
        let xd = place(b, &values::to_bytes(dt, &x), off * dt.size())?;
        let tiles = reduce::tile_count(n);
        let od = place(b, &vec![0x5Au8; 4 * tiles], 0)?;
        entries.push(ReduceEntry {
            x: xd.addr(),
            n: n as u64,
            out: od.addr(),
            tile_start: 0,
        });
        xs.push((x, xd));
        outs.push(od);
    }
    let total = args::assign_tiles(&mut entries);
    let (table, one) = if r.table {
        let bytes: Vec<u8> = entries.iter().flat_map(|e| e.to_bytes()).collect();
        (place(b, &bytes, 0)?.addr(), ReduceEntry::default())
    } else {
        (0, entries[0])
    };
    let mut shape = ops::shape_for(total);
    if let Some(g) = r.grid {
        shape.grid.0 = g;
    }
    let params = [
        ParamValue::U64(table),
        ParamValue::from_struct(8, one.to_bytes()),
        ParamValue::U32(entries.len() as u32),
        ParamValue::U64(total),
    ];
    b.launch("reduce", &r.entry(), shape, &params).map_err(be)?;
    let mut compared = 0;
    for (k, ((x, xd), od)) in xs.iter().zip(&outs).enumerate() {
        let v: Vec<T> = typed(x);
        let tiles = reduce::tile_count(v.len());
        let mut want = vec![0f32; tiles];
        match r.kind {
            Reduction::Sum => reduce::partials_by(&v, |y| y, &mut want),
            Reduction::SumSq => reduce::partials_by(&v, |y| y * y, &mut want),
            Reduction::MaxAbs => {
                for (o, t) in want.iter_mut().zip(v.chunks(reduce::TILE)) {
                    *o = reduce::max_abs(t);
                }
                Ok(())
            }
        }
        .map_err(|e| CaseError::Backend(format!("core: {e:?}")))?;
        let want: Vec<u32> = want
            .iter()
            .map(|w| canonicalize_f32(*w).to_bits())
            .collect();
        let got = values::from_bytes(&fetch(b, od, "partials")?, 4);
        compare(
            &format!("input {k} (n {}) tile", v.len()),
            &got,
            &want,
            &|_| String::new(),
        )?;
        if fetch(b, xd, "input")? != values::to_bytes(dt, x) {
            return Err(CaseError::Mismatch(format!("input {k} was written")));
        }
        compared += v.len() as u64;
    }
    Ok(compared)
}

/// One gradient buffer of a scan: (elements, family, offset in elements, planted non-finite
/// element: (index, 0 = +inf, 1 = -inf, 2 = NaN)).
pub type ScanGrad = (usize, Family, usize, Option<(usize, u8)>);

/// One launch of the non-finite scan `adamant_nonfinite_<grad>`.
#[derive(Clone, Debug)]
pub struct ScanSpec {
    /// Gradient storage type.
    pub dtype: Dtype,
    /// Gradients: (elements, family, offset in elements, planted non-finite element:
    /// (index, 0 = +inf, 1 = -inf, 2 = NaN)).
    pub grads: Vec<ScanGrad>,
    /// Device table (true) or one tensor by value.
    pub table: bool,
    /// Blocks; `None` = the launcher's choice.
    pub grid: Option<u32>,
    /// The flag word before the launch.
    pub flag0: u32,
    /// Data seed.
    pub seed: u64,
}

impl ScanSpec {
    /// Kernel entry.
    pub fn entry(&self) -> String {
        args::nonfinite_entry(self.dtype).to_string()
    }
    /// Values compared.
    pub fn cost(&self) -> u64 {
        self.grads.iter().map(|g| g.0 as u64).sum()
    }
    /// Run on `b`.
    pub fn run(&self, b: &mut dyn Backend) -> Result<u64, CaseError> {
        let dt = self.dtype;
        let mut rng = Rng(self.seed);
        let mut entries = Vec::new();
        let mut any_bad = false;
        let mut held = Vec::new();
        for &(n, fam, off, plant) in &self.grads {
            let mut g = values::buffer(&mut rng, dt, fam, n, false);
            if let Some((i, kind)) = plant {
                let inf = match dt {
                    Dtype::F32 => 0x7F80_0000,
                    Dtype::Bf16 => 0x7F80,
                    Dtype::F16 => 0x7C00,
                };
                let sign = match dt {
                    Dtype::F32 => 0x8000_0000,
                    _ => 0x8000,
                };
                g[i] = match kind {
                    0 => inf,
                    1 => inf | sign,
                    _ => inf | 1,
                };
            }
            any_bad |= g.iter().any(|&x| !values::is_finite(dt, x));
            let d = place(b, &values::to_bytes(dt, &g), off * dt.size())?;
            entries.push(TensorEntry {
                grad: d.addr(),
                n: n as u64,
                ..TensorEntry::default()
            });
            held.push((g, d));
        }
        let total = args::assign_chunks(&mut entries);
        let (table, one) = if self.table {
            (
                place(b, &args::table_bytes(&entries), 0)?.addr(),
                TensorEntry::default(),
            )
        } else {
            (0, entries[0])
        };
        let flag = place(b, &self.flag0.to_le_bytes(), 0)?;
        let mut shape = ops::shape_for(total);
        if let Some(g) = self.grid {
            shape.grid.0 = g;
        }
        let params = [
            ParamValue::U64(table),
            ParamValue::from_struct(8, one.to_bytes()),
            ParamValue::U32(entries.len() as u32),
            ParamValue::U64(total),
            ParamValue::U64(flag.addr()),
        ];
        b.launch("step", &self.entry(), shape, &params)
            .map_err(be)?;
        // core: skip_reason's scan, over the stored bits.
        let want = if any_bad { FOUND_INF_SET } else { self.flag0 };
        let got = u32::from_le_bytes(fetch(b, &flag, "found_inf")?.try_into().unwrap_or([0; 4]));
        if got != want {
            return Err(CaseError::Mismatch(format!(
                "found_inf {got:#x}, core {want:#x} (non-finite present: {any_bad})"
            )));
        }
        for (k, (g, d)) in held.iter().enumerate() {
            if fetch(b, d, "grad")? != values::to_bytes(dt, g) {
                return Err(CaseError::Mismatch(format!("gradient {k} was written")));
            }
        }
        Ok(self.cost())
    }
}

/// One launch of `adamant_step_commit`.
#[derive(Clone, Debug)]
pub struct CommitSpec {
    /// Step count before.
    pub step0: u64,
    /// Flag word (`None`: no flag address).
    pub flag: Option<u32>,
    /// Grid and block.
    pub shape: ((u32, u32, u32), u32),
}

impl CommitSpec {
    /// Run on `b`.
    pub fn run(&self, b: &mut dyn Backend) -> Result<u64, CaseError> {
        let step = place(b, &self.step0.to_le_bytes(), 0)?;
        let flag = match self.flag {
            Some(w) => Some(place(b, &w.to_le_bytes(), 0)?),
            None => None,
        };
        let shape = LaunchShape {
            grid: self.shape.0,
            block: (self.shape.1, 1, 1),
            shared_bytes: 0,
        };
        let params = [
            ParamValue::U64(step.addr()),
            ParamValue::U64(flag.as_ref().map_or(0, |d| d.addr())),
        ];
        b.launch("step", args::COMMIT_ENTRY, shape, &params)
            .map_err(be)?;
        // core: `commit` advances the counter unless the step was skipped.
        let skipped = self.flag.is_some_and(flag_set);
        let want = if skipped { self.step0 } else { self.step0 + 1 };
        let got = u64::from_le_bytes(fetch(b, &step, "step")?.try_into().unwrap_or([0; 8]));
        if got != want {
            return Err(CaseError::Mismatch(format!("step {got}, core {want}")));
        }
        if let (Some(d), Some(w)) = (&flag, self.flag) {
            if fetch(b, d, "found_inf")? != w.to_le_bytes() {
                return Err(CaseError::Mismatch("commit wrote found_inf".into()));
            }
        }
        Ok(1)
    }
}
