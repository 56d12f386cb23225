//! The README's Rust example, kept compiling and passing.

#[test]
fn readme_example() {
    use adamant_core::{Adam, AdamConfig, StepOptions, StepOutcome};

    let n = 1024;
    let mut param = vec![0.5f32; n];
    let grad = vec![0.01f32; n];
    let (mut exp_avg, mut exp_avg_sq) = (vec![0.0f32; n], vec![0.0f32; n]);

    // PyTorch AdamW defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 1e-2.
    let mut adamw = Adam::new(AdamConfig::adamw()).expect("valid config");
    let out = adamw
        .step(
            &mut param,
            &grad,
            &mut exp_avg,
            &mut exp_avg_sq,
            &StepOptions::new(1e-3),
        )
        .expect("buffers fit");
    assert_eq!(out, StepOutcome::Applied { step: 1 });
    assert!(param.iter().all(|&p| p < 0.5));
}
