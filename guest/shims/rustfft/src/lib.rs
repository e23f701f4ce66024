//! Guest stand-in for `rustfft` (the subset tract 0.23 uses): a plain O(n²) DFT.
//!
//! Why it exists: tract-core 0.23 enables rustfft's `wasm_simd` feature unconditionally, and
//! rustfft then compiles `#[target_feature(enable = "simd128")]` kernels that its planner uses
//! with no run-time check. LLVM's WebAssembly backend gives every function of a module the
//! union of the module's target features, so those kernels make SIMD instructions appear in
//! unrelated code too, and the build without `+simd128` still fails to load in pre-SIMD
//! engines (wasmtime 0.23, as embedded by the OpenWhisk `wasm:0.1` executor).
//!
//! FFT ops are not used by image classifiers; this keeps them working (correct, unnormalised,
//! like rustfft) without target-specific code. Same API shape: `FftPlanner::new().plan_fft(..)`
//! returning `Arc<dyn Fft<T>>`, whose `process` transforms each `len`-sized chunk in place.

pub use num_complex;
pub use num_traits;

use num_complex::Complex;
use num_traits::{FromPrimitive, Signed};
use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::Arc;

/// Element types an FFT can be computed on (same bounds as rustfft's).
pub trait FftNum: Copy + FromPrimitive + Signed + Sync + Send + Debug + 'static {}
impl<T> FftNum for T where T: Copy + FromPrimitive + Signed + Sync + Send + Debug + 'static {}

/// Sign of the exponent: forward is `exp(-2πi·kn/N)`, inverse `exp(+2πi·kn/N)`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum FftDirection {
    Forward,
    Inverse,
}

/// Trait for types which provide the length and direction of a transform.
pub trait Length {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub trait Direction {
    fn fft_direction(&self) -> FftDirection;
}

/// A planned transform of a fixed length.
pub trait Fft<T: FftNum>: Length + Direction + Sync + Send {
    /// Transform `buffer` in place, one `len()`-sized chunk at a time (no normalisation).
    /// A trailing partial chunk is left untouched.
    fn process(&self, buffer: &mut [Complex<T>]);

    /// Same as `process`; the scratch buffer is not needed by this implementation.
    fn process_with_scratch(&self, buffer: &mut [Complex<T>], _scratch: &mut [Complex<T>]) {
        self.process(buffer)
    }

    fn get_inplace_scratch_len(&self) -> usize {
        0
    }
}

struct Dft<T> {
    len: usize,
    direction: FftDirection,
    /// twiddles[j] = exp(∓2πi·j/len), computed in f64.
    twiddles: Vec<Complex<T>>,
}

impl<T: FftNum> Dft<T> {
    fn new(len: usize, direction: FftDirection) -> Self {
        let sign = match direction {
            FftDirection::Forward => -1.0,
            FftDirection::Inverse => 1.0,
        };
        let zero = T::from_f64(0.0).unwrap_or_else(T::zero);
        let twiddles = (0..len)
            .map(|j| {
                let angle = sign * 2.0 * std::f64::consts::PI * j as f64 / len as f64;
                Complex::new(
                    T::from_f64(angle.cos()).unwrap_or(zero),
                    T::from_f64(angle.sin()).unwrap_or(zero),
                )
            })
            .collect();
        Dft {
            len,
            direction,
            twiddles,
        }
    }
}

impl<T: FftNum> Length for Dft<T> {
    fn len(&self) -> usize {
        self.len
    }
}

impl<T: FftNum> Direction for Dft<T> {
    fn fft_direction(&self) -> FftDirection {
        self.direction
    }
}

impl<T: FftNum> Fft<T> for Dft<T> {
    fn process(&self, buffer: &mut [Complex<T>]) {
        let n = self.len;
        if n <= 1 {
            return;
        }
        let mut out = vec![Complex::new(T::zero(), T::zero()); n];
        for chunk in buffer.chunks_exact_mut(n) {
            for (k, o) in out.iter_mut().enumerate() {
                let mut acc = Complex::new(T::zero(), T::zero());
                for (j, x) in chunk.iter().enumerate() {
                    acc = acc + *x * self.twiddles[(j * k) % n];
                }
                *o = acc;
            }
            chunk.copy_from_slice(&out);
        }
    }
}

/// Plans transforms; every plan is a plain DFT.
pub struct FftPlanner<T: FftNum> {
    _t: PhantomData<T>,
}

impl<T: FftNum> Default for FftPlanner<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: FftNum> FftPlanner<T> {
    pub fn new() -> Self {
        FftPlanner { _t: PhantomData }
    }

    pub fn plan_fft(&mut self, len: usize, direction: FftDirection) -> Arc<dyn Fft<T>> {
        Arc::new(Dft::new(len, direction))
    }

    pub fn plan_fft_forward(&mut self, len: usize) -> Arc<dyn Fft<T>> {
        self.plan_fft(len, FftDirection::Forward)
    }

    pub fn plan_fft_inverse(&mut self, len: usize) -> Arc<dyn Fft<T>> {
        self.plan_fft(len, FftDirection::Inverse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_definition_and_inverts() {
        let x: Vec<Complex<f64>> = (0..6)
            .map(|i| Complex::new(i as f64, (i * i) as f64 * 0.5))
            .collect();
        let mut y = x.clone();
        FftPlanner::new().plan_fft_forward(6).process(&mut y);
        // y[1] by definition
        let mut want = Complex::new(0.0, 0.0);
        for (j, v) in x.iter().enumerate() {
            let a = -2.0 * std::f64::consts::PI * j as f64 / 6.0;
            want += v * Complex::new(a.cos(), a.sin());
        }
        assert!((y[1] - want).norm() < 1e-9);
        FftPlanner::new().plan_fft_inverse(6).process(&mut y);
        for (a, b) in x.iter().zip(&y) {
            assert!((a - b / 6.0).norm() < 1e-9);
        }
    }
}
