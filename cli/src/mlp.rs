//! A two-layer perceptron with hand-written gradients and a synthetic dataset, for the demo
//! and for anyone who wants a small, deterministic training problem (data-parallel LoCo,
//! Adam-mini, AdaGC rows reuse it).
//!
//! Model: `x (16) -> tanh(W1 x + b1) (64) -> W2 h + b2 (4) -> softmax`, mean cross-entropy.
//! Parameters are stored in any [`Element`] type (f32, bf16, f16) and widened to f32 for the
//! arithmetic. Every loop runs in a fixed order in f32 with `libm`'s software `tanhf`,
//! `expf` and `logf`, so losses and gradients have the same bits on every machine.
//!
//! Data: [`Dataset::synthetic`] draws inputs from a fixed-seed generator and labels them with
//! a fixed random "teacher" network, so the task is learnable but not linearly trivial.

// Loops index the matrices as the formulas do, and `a = a + b` reads as one f32 rounding.
#![allow(clippy::assign_op_pattern, clippy::needless_range_loop)]

use adamant_core::Element;

/// Input features.
pub const INPUT: usize = 16;
/// Hidden units.
pub const HIDDEN: usize = 64;
/// Classes.
pub const CLASSES: usize = 4;

/// SplitMix64: the demo's deterministic generator.
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[-1, 1)`, from 24 random bits (exact in f32).
    pub fn symmetric(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32) / (1u32 << 23) as f32 - 1.0
    }
}

/// A labelled dataset: `inputs[i*INPUT..][..INPUT]` has label `labels[i]`.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Row-major inputs, `len * INPUT` values.
    pub inputs: Vec<f32>,
    /// Class of each row, `< CLASSES`.
    pub labels: Vec<usize>,
}

impl Dataset {
    /// `n` points in `[-1, 1)^16`, labelled by `argmax(T2 tanh(3 * T1 x))` for a random teacher
    /// `(T1: 8x16, T2: 4x8)` drawn from `seed`.
    pub fn synthetic(n: usize, seed: u64) -> Dataset {
        let mut r = SplitMix64(seed);
        let t1: Vec<f32> = (0..8 * INPUT).map(|_| r.symmetric()).collect();
        let t2: Vec<f32> = (0..CLASSES * 8).map(|_| r.symmetric()).collect();
        let mut inputs = Vec::with_capacity(n * INPUT);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let x: Vec<f32> = (0..INPUT).map(|_| r.symmetric()).collect();
            let mut h = [0.0f32; 8];
            for (j, hj) in h.iter_mut().enumerate() {
                let mut s = 0.0f32;
                for k in 0..INPUT {
                    s = s + t1[j * INPUT + k] * x[k];
                }
                *hj = libm::tanhf(3.0 * s);
            }
            let mut best = (0, f32::NEG_INFINITY);
            for c in 0..CLASSES {
                let mut s = 0.0f32;
                for j in 0..8 {
                    s = s + t2[c * 8 + j] * h[j];
                }
                if s > best.1 {
                    best = (c, s);
                }
            }
            inputs.extend_from_slice(&x);
            labels.push(best.0);
        }
        Dataset { inputs, labels }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Input row `i`.
    pub fn x(&self, i: usize) -> &[f32] {
        &self.inputs[i * INPUT..(i + 1) * INPUT]
    }
}

/// The model's parameters, one buffer per tensor, in storage type `P`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp<P: Element = f32> {
    /// `HIDDEN x INPUT`, row-major.
    pub w1: Vec<P>,
    /// `HIDDEN`.
    pub b1: Vec<P>,
    /// `CLASSES x HIDDEN`, row-major.
    pub w2: Vec<P>,
    /// `CLASSES`.
    pub b2: Vec<P>,
}

/// Names of the tensors in model order, spelled as a PyTorch module would name them, so
/// name-based rules (Adam-mini's partition) see an MLP: weights match `mlp`, biases `bias`.
pub const TENSOR_NAMES: [&str; 4] = [
    "mlp.fc1.weight",
    "mlp.fc1.bias",
    "mlp.fc2.weight",
    "mlp.fc2.bias",
];

/// Shapes of the tensors in model order (row-major, dim 0 first).
pub const TENSOR_SHAPES: [&[usize]; 4] =
    [&[HIDDEN, INPUT], &[HIDDEN], &[CLASSES, HIDDEN], &[CLASSES]];

/// Gradients of the mean loss, one f32 buffer per tensor (same shapes as [`Mlp`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Grads {
    /// d loss / d w1.
    pub w1: Vec<f32>,
    /// d loss / d b1.
    pub b1: Vec<f32>,
    /// d loss / d w2.
    pub w2: Vec<f32>,
    /// d loss / d b2.
    pub b2: Vec<f32>,
}

impl Grads {
    fn zeros() -> Grads {
        Grads {
            w1: vec![0.0; HIDDEN * INPUT],
            b1: vec![0.0; HIDDEN],
            w2: vec![0.0; CLASSES * HIDDEN],
            b2: vec![0.0; CLASSES],
        }
    }

    /// The tensors in model order (w1, b1, w2, b2).
    pub fn tensors(&self) -> [&[f32]; 4] {
        [&self.w1, &self.b1, &self.w2, &self.b2]
    }

    /// Every gradient element multiplied by `s` (a loss scale), narrowed to `G`.
    pub fn scaled<G: Element>(&self, s: f32) -> [Vec<G>; 4] {
        self.tensors()
            .map(|t| t.iter().map(|&g| G::narrow(g * s)).collect())
    }
}

impl<P: Element> Mlp<P> {
    /// Parameters drawn from `seed`: weights uniform in `+-1/sqrt(fan_in)`, biases zero.
    pub fn init(seed: u64) -> Mlp<P> {
        let mut r = SplitMix64(seed);
        let mut layer = |rows: usize, cols: usize| -> Vec<P> {
            let bound = 1.0 / (cols as f32).sqrt();
            (0..rows * cols)
                .map(|_| P::narrow(r.symmetric() * bound))
                .collect()
        };
        let w1 = layer(HIDDEN, INPUT);
        let w2 = layer(CLASSES, HIDDEN);
        Mlp {
            w1,
            b1: vec![P::narrow(0.0); HIDDEN],
            w2,
            b2: vec![P::narrow(0.0); CLASSES],
        }
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.w1.len() + self.b1.len() + self.w2.len() + self.b2.len()
    }

    /// The tensors in model order (w1, b1, w2, b2), mutably.
    pub fn tensors_mut(&mut self) -> [&mut [P]; 4] {
        [&mut self.w1, &mut self.b1, &mut self.w2, &mut self.b2]
    }

    /// The tensors in model order.
    pub fn tensors(&self) -> [&[P]; 4] {
        [&self.w1, &self.b1, &self.w2, &self.b2]
    }

    /// Hidden activations and class probabilities for one input.
    fn forward(&self, x: &[f32]) -> ([f32; HIDDEN], [f32; CLASSES]) {
        let mut h = [0.0f32; HIDDEN];
        for (j, hj) in h.iter_mut().enumerate() {
            let mut s = self.b1[j].widen();
            for k in 0..INPUT {
                s = s + self.w1[j * INPUT + k].widen() * x[k];
            }
            *hj = libm::tanhf(s);
        }
        let mut z = [0.0f32; CLASSES];
        for (c, zc) in z.iter_mut().enumerate() {
            let mut s = self.b2[c].widen();
            for j in 0..HIDDEN {
                s = s + self.w2[c * HIDDEN + j].widen() * h[j];
            }
            *zc = s;
        }
        // Softmax with the maximum subtracted, for range.
        let zmax = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let mut sum = 0.0f32;
        for zc in z.iter_mut() {
            *zc = libm::expf(*zc - zmax);
            sum = sum + *zc;
        }
        for zc in z.iter_mut() {
            *zc = *zc / sum;
        }
        (h, z)
    }

    /// Mean cross-entropy over the examples `idx` of `data`.
    pub fn loss(&self, data: &Dataset, idx: impl IntoIterator<Item = usize>) -> f32 {
        let mut total = 0.0f32;
        let mut n = 0usize;
        for i in idx {
            let (_, p) = self.forward(data.x(i));
            total = total - libm::logf(p[data.labels[i]].max(f32::MIN_POSITIVE));
            n += 1;
        }
        total / n as f32
    }

    /// Mean cross-entropy over the whole dataset.
    pub fn full_loss(&self, data: &Dataset) -> f32 {
        self.loss(data, 0..data.len())
    }

    /// Loss and gradients of the mean cross-entropy over the examples `idx`, by
    /// back-propagation written out: `dz = (softmax - onehot)/B`, `dW2 = dz h^T`, `db2 = dz`,
    /// `dh = W2^T dz`, `da = dh * (1 - h^2)`, `dW1 = da x^T`, `db1 = da`.
    pub fn loss_and_grads(&self, data: &Dataset, idx: &[usize]) -> (f32, Grads) {
        let mut g = Grads::zeros();
        let inv_b = 1.0 / idx.len() as f32;
        let mut total = 0.0f32;
        for &i in idx {
            let x = data.x(i);
            let (h, p) = self.forward(x);
            let y = data.labels[i];
            total = total - libm::logf(p[y].max(f32::MIN_POSITIVE));
            let mut dz = [0.0f32; CLASSES];
            for c in 0..CLASSES {
                let t = if c == y { 1.0 } else { 0.0 };
                dz[c] = (p[c] - t) * inv_b;
            }
            let mut dh = [0.0f32; HIDDEN];
            for c in 0..CLASSES {
                g.b2[c] = g.b2[c] + dz[c];
                for j in 0..HIDDEN {
                    g.w2[c * HIDDEN + j] = g.w2[c * HIDDEN + j] + dz[c] * h[j];
                    dh[j] = dh[j] + self.w2[c * HIDDEN + j].widen() * dz[c];
                }
            }
            for j in 0..HIDDEN {
                let da = dh[j] * (1.0 - h[j] * h[j]);
                g.b1[j] = g.b1[j] + da;
                for k in 0..INPUT {
                    g.w1[j * INPUT + k] = g.w1[j * INPUT + k] + da * x[k];
                }
            }
        }
        (total * inv_b, g)
    }

    /// FNV-1a 64 over the bits of every parameter, tensor by tensor, little-endian.
    pub fn hash(&self) -> u64 {
        let mut h: u64 = 0xCBF2_9CE4_8422_2325;
        for t in self.tensors() {
            for v in t {
                let b = v.to_bits_u32().to_le_bytes();
                for &byte in &b[..P::DTYPE.size()] {
                    h ^= byte as u64;
                    h = h.wrapping_mul(0x0000_0100_0000_01B3);
                }
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written gradient agrees with central finite differences of the loss (f64
    /// comparison with a loose tolerance: f32 losses differ by rounding).
    #[test]
    fn gradients_match_finite_differences() {
        let data = Dataset::synthetic(32, 3);
        let idx: Vec<usize> = (0..32).collect();
        let m: Mlp = Mlp::init(5);
        let (_, g) = m.loss_and_grads(&data, &idx);
        let eps = 1e-2f32;
        let mut checked = 0;
        for (t, i) in [
            (0usize, 3usize),
            (0, 100),
            (1, 7),
            (2, 17),
            (2, 200),
            (3, 1),
        ] {
            let mut plus = m.clone();
            let mut minus = m.clone();
            plus.tensors_mut()[t][i] += eps;
            minus.tensors_mut()[t][i] -= eps;
            let fd = (plus.loss(&data, idx.iter().copied()) as f64
                - minus.loss(&data, idx.iter().copied()) as f64)
                / (2.0 * eps as f64);
            let an = g.tensors()[t][i] as f64;
            assert!(
                (fd - an).abs() <= 1e-3 + 2e-2 * an.abs(),
                "tensor {t} index {i}: finite difference {fd} vs analytic {an}"
            );
            checked += 1;
        }
        assert_eq!(checked, 6);
    }

    #[test]
    fn labels_use_every_class() {
        let data = Dataset::synthetic(512, 1);
        for c in 0..CLASSES {
            let k = data.labels.iter().filter(|&&l| l == c).count();
            assert!(k > 512 / 20, "class {c} has {k} examples");
        }
    }
}
