//! Generates `$OUT_DIR/model_meta.rs` from the model TOML (the single source of truth for model
//! facts) and embeds the ONNX model file.
//!
//! Inputs (absolute paths, both required):
//!   GUEST_MODEL_CONFIG  the model TOML, e.g. <clone>/models/mobilenet_v2_1.4_224.toml
//!   GUEST_MODEL_FILE    the ONNX model file to embed
//! The labels file is read from `[labels].file`, relative to the TOML's directory.

use serde::Deserialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct Config {
    model: ModelSection,
    input: InputSection,
    output: OutputSection,
    labels: LabelsSection,
    preprocess: PreprocessSection,
    limits: LimitsSection,
}

#[derive(Deserialize)]
struct ModelSection {
    name: String,
}

#[derive(Deserialize)]
struct InputSection {
    name: String,
    shape: Vec<i64>,
    layout: String,
}

#[derive(Deserialize)]
struct OutputSection {
    name: String,
    classes: i64,
    softmax: bool,
}

#[derive(Deserialize)]
struct LabelsSection {
    file: String,
    offset: i64,
}

#[derive(Deserialize)]
struct PreprocessSection {
    central_crop: f64,
    resize: String,
    mean: Vec<f64>,
    std: Vec<f64>,
}

#[derive(Deserialize)]
struct LimitsSection {
    max_image_bytes: i64,
    max_pixels: i64,
    max_side: i64,
}

fn fail(msg: &str) -> ! {
    eprintln!("error: classifier build: {msg}");
    std::process::exit(1);
}

fn env_path(var: &str, what: &str) -> PathBuf {
    println!("cargo:rerun-if-env-changed={var}");
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => {
            let p = PathBuf::from(v);
            if !p.is_absolute() {
                fail(&format!(
                    "{var} must be an absolute path ({what}); got {}",
                    p.display()
                ));
            }
            if !p.is_file() {
                fail(&format!(
                    "{var}={} does not name a readable file ({what})",
                    p.display()
                ));
            }
            p
        }
        _ => fail(&format!(
            "environment variable {var} is not set; set it to the absolute path of {what} \
             (GUEST_MODEL_CONFIG=<models/NAME.toml> GUEST_MODEL_FILE=<NAME.onnx> cargo build ...)"
        )),
    }
}

fn read_to_string(p: &Path, what: &str) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| fail(&format!("cannot read {what} {}: {e}", p.display())))
}

fn main() {
    let config_path = env_path("GUEST_MODEL_CONFIG", "the model config TOML");
    let model_path = env_path("GUEST_MODEL_FILE", "the ONNX model file");
    println!("cargo:rerun-if-changed={}", config_path.display());
    println!("cargo:rerun-if-changed={}", model_path.display());
    println!("cargo:rerun-if-changed=build.rs");

    let text = read_to_string(&config_path, "model config");
    let cfg: Config = toml::from_str(&text).unwrap_or_else(|e| {
        fail(&format!(
            "{}: invalid model config: {e}",
            config_path.display()
        ))
    });

    // ---- validation -------------------------------------------------------------------------
    let shape = &cfg.input.shape;
    if cfg.input.layout != "NHWC" || shape.len() != 4 {
        fail(&format!(
            "[input] must be rank-4 NHWC; got layout {:?} shape {:?}",
            cfg.input.layout, shape
        ));
    }
    if shape[0] != 1 || shape[3] != 3 || shape[1] <= 0 || shape[2] <= 0 {
        fail(&format!(
            "[input].shape must be [1, H, W, 3] with H, W > 0; got {shape:?}"
        ));
    }
    if cfg.output.classes <= 0 {
        fail("[output].classes must be > 0");
    }
    if cfg.labels.offset < 0 {
        fail("[labels].offset must be >= 0");
    }
    let crop = cfg.preprocess.central_crop;
    if !(crop > 0.0 && crop <= 1.0) {
        fail(&format!(
            "[preprocess].central_crop must be in (0, 1]; got {crop}"
        ));
    }
    if cfg.preprocess.resize != "bilinear" {
        fail(&format!(
            "[preprocess].resize {:?} is not supported by the guest (only \"bilinear\")",
            cfg.preprocess.resize
        ));
    }
    if cfg.preprocess.mean.len() != 3 || cfg.preprocess.std.len() != 3 {
        fail("[preprocess].mean and .std must have 3 entries (R, G, B)");
    }
    if cfg
        .preprocess
        .std
        .iter()
        .any(|s| *s == 0.0 || !s.is_finite())
        || cfg.preprocess.mean.iter().any(|m| !m.is_finite())
    {
        fail("[preprocess].mean must be finite and .std finite and non-zero");
    }
    let l = &cfg.limits;
    if l.max_image_bytes <= 0 || l.max_pixels <= 0 || l.max_side <= 0 {
        fail("[limits] values must all be > 0");
    }
    if l.max_image_bytes > (1 << 30) || l.max_pixels > (1 << 30) || l.max_side > (1 << 20) {
        fail("[limits] values are implausibly large for a wasm32 guest");
    }

    let cfg_dir = config_path.parent().unwrap_or_else(|| Path::new("/"));
    let labels_path = cfg_dir.join(&cfg.labels.file);
    println!("cargo:rerun-if-changed={}", labels_path.display());
    let labels_text = read_to_string(&labels_path, "labels file");
    let labels: Vec<&str> = labels_text.lines().collect();
    let need = (cfg.output.classes + cfg.labels.offset) as usize;
    if labels.len() < need {
        fail(&format!(
            "{} has {} labels; need at least classes + offset = {} + {} = {need}",
            labels_path.display(),
            labels.len(),
            cfg.output.classes,
            cfg.labels.offset
        ));
    }
    let model_len = std::fs::metadata(&model_path)
        .unwrap_or_else(|e| fail(&format!("cannot stat {}: {e}", model_path.display())))
        .len();

    // ---- generation -------------------------------------------------------------------------
    let mut out = String::new();
    let w = &mut out;
    writeln!(
        w,
        "// @generated by classifier/build.rs from {}",
        config_path.display()
    )
    .unwrap();
    writeln!(w, "pub const MODEL_NAME: &str = {:?};", cfg.model.name).unwrap();
    writeln!(w, "pub const INPUT_NAME: &str = {:?};", cfg.input.name).unwrap();
    writeln!(
        w,
        "pub const INPUT_SHAPE: [usize; 4] = [{}, {}, {}, {}];",
        shape[0], shape[1], shape[2], shape[3]
    )
    .unwrap();
    writeln!(w, "pub const OUTPUT_NAME: &str = {:?};", cfg.output.name).unwrap();
    writeln!(
        w,
        "pub const OUTPUT_CLASSES: usize = {};",
        cfg.output.classes
    )
    .unwrap();
    writeln!(
        w,
        "pub const OUTPUT_IS_SOFTMAX: bool = {};",
        cfg.output.softmax
    )
    .unwrap();
    writeln!(w, "pub const LABEL_OFFSET: usize = {};", cfg.labels.offset).unwrap();
    writeln!(w, "pub const CENTRAL_CROP: f64 = {:?};", crop).unwrap();
    let f32s = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{:?}f32", *x as f32))
            .collect::<Vec<_>>()
            .join(", ")
    };
    writeln!(
        w,
        "pub const MEAN: [f32; 3] = [{}];",
        f32s(&cfg.preprocess.mean)
    )
    .unwrap();
    writeln!(
        w,
        "pub const STD: [f32; 3] = [{}];",
        f32s(&cfg.preprocess.std)
    )
    .unwrap();
    writeln!(
        w,
        "pub const MAX_IMAGE_BYTES: usize = {};",
        l.max_image_bytes
    )
    .unwrap();
    writeln!(w, "pub const MAX_PIXELS: u64 = {};", l.max_pixels).unwrap();
    writeln!(w, "pub const MAX_SIDE: u32 = {};", l.max_side).unwrap();
    writeln!(w, "pub const MODEL_BYTES_LEN: usize = {model_len};").unwrap();
    writeln!(
        w,
        "pub static MODEL: crate::snapshot::EmbeddedModel<{model_len}> = \
         crate::snapshot::EmbeddedModel::new(*include_bytes!({:?}));",
        model_path.display().to_string()
    )
    .unwrap();
    writeln!(w, "pub static LABELS: [&str; {}] = [", labels.len()).unwrap();
    for lab in &labels {
        writeln!(w, "    {:?},", lab).unwrap();
    }
    writeln!(w, "];").unwrap();

    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dest = out_dir.join("model_meta.rs");
    std::fs::write(&dest, out)
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", dest.display())));
}
