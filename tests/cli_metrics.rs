//! `regimes score`, `gap` and `jacobian`: JSON equal to the library's numbers,
//! features from .npy/.npz files, and clear errors on mismatched inputs.

mod common;

use common::{fails_with, regimes, s};

use std::path::Path;
use std::process::Output;

use candle_core::DType;
use diffusion_regimes::data::npy::write_npy;
use diffusion_regimes::data::npz::read_npz;
use diffusion_regimes::metrics::{reproducibility, Bootstrap, Similarity};

fn json(o: &Output) -> serde_json::Value {
    common::succeeds(o);
    serde_json::from_slice(&o.stdout).unwrap()
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn npz_arrays_are_read_by_name_from_stored_and_compressed_archives() {
    let features = fixture("features.npz");
    let features = Path::new(&features);
    let f = read_npz(features, Some("sscd")).unwrap();
    assert_eq!(f.to_vec2::<f32>().unwrap()[3], vec![10.0, 11.0, 12.0]);
    let e = read_npz(features, Some("nope")).err().unwrap().to_string();
    assert!(
        e.contains("nope") && e.contains("sscd") && e.contains("other"),
        "{e}"
    );
    // Two arrays and no name: the error lists them.
    let e = read_npz(features, None).err().unwrap().to_string();
    assert!(e.contains("2 arrays") && e.contains("sscd"), "{e}");
    // np.savez_compressed(sscd=np.ones((2, 2), np.float32)), deflated.
    let c = read_npz(Path::new(&fixture("compressed.npz")), None).unwrap();
    assert_eq!(c.to_vec2::<f32>().unwrap(), vec![vec![1.0; 2]; 2]);
}

#[test]
fn scores_from_the_cli_equal_the_library_and_record_their_settings() {
    let d = common::temp_dir("cli-score");
    let a = common::gaussian(1, 0, 4, 3);
    let b = (&a + (common::gaussian(2, 0, 4, 3) * 0.8).unwrap()).unwrap();
    let (pa, pb) = (d.join("a.npy"), d.join("b.npy"));
    write_npy(&pa, &a, DType::F64).unwrap();
    write_npy(&pb, &b, DType::F64).unwrap();
    let out = json(&regimes(&[
        "score",
        "rp",
        "--a",
        s(&pa),
        "--b",
        s(&pb),
        "--threshold",
        "0.7",
    ]));
    let want = reproducibility(&a, &b, Similarity::Cosine, 0.7, "", Bootstrap::default()).unwrap();
    assert_eq!(out["value"].as_f64().unwrap(), want.value);
    assert_eq!(out["threshold"].as_f64().unwrap(), 0.7);
    assert_eq!(out["similarity"], "cosine");
    assert_eq!(out["m"], 4);

    // Features from an .npz member replace the raw rows (4 rows, like the samples).
    let fx = fixture("features.npz");
    let spec = format!("{fx}:sscd");
    let out = json(&regimes(&[
        "score",
        "rp",
        "--a",
        s(&pa),
        "--b",
        s(&pb),
        "--features-a",
        &spec,
        "--features-b",
        &spec,
    ]));
    assert_eq!(out["value"].as_f64().unwrap(), 1.0);
    assert!(out["features"].as_str().unwrap().contains("sscd"));

    let out = json(&regimes(&[
        "score",
        "gl",
        "--samples",
        s(&pa),
        "--train",
        s(&pa),
    ]));
    assert_eq!(
        (out[0]["value"].as_f64(), out[1]["value"].as_f64()),
        (Some(0.0), Some(1.0))
    );
    let out = json(&regimes(&[
        "score",
        "ratio",
        "--samples",
        s(&pa),
        "--train",
        s(&pa),
    ]));
    assert_eq!(out["value"].as_f64(), Some(1.0));

    let short = d.join("short.npy");
    write_npy(&short, &common::gaussian(3, 0, 3, 3), DType::F64).unwrap();
    let o = regimes(&["score", "rp", "--a", s(&pa), "--b", s(&short)]);
    fails_with(&o, &["paired by seed"]);
    let wide = d.join("wide.npy");
    write_npy(&wide, &common::gaussian(3, 0, 3, 5), DType::F64).unwrap();
    let o = regimes(&["score", "gl", "--samples", s(&wide), "--train", s(&pa)]);
    fails_with(&o, &["[M, 3]"]);
}

#[test]
fn gap_to_itself_is_zero_and_jacobians_report_rank() {
    let d = common::temp_dir("cli-gap");
    let train = d.join("train.npy");
    write_npy(&train, &common::gaussian(4, 0, 3, 6), DType::F64).unwrap();
    let spec = format!("empirical:{}", s(&train));
    let fitted = format!("gaussian:{}", s(&train));
    let out = json(&regimes(&[
        "gap",
        "--a",
        &spec,
        "--b",
        &spec,
        "--b",
        &fitted,
        "--points",
        s(&train),
        "--sigmas",
        "0.1,1",
    ]));
    assert_eq!(out["gaps_by_b"][&spec], serde_json::json!([0.0, 0.0]));
    assert!(out["gaps_by_b"][&fitted][0].as_f64().unwrap() > 0.0);
    let out = json(&regimes(&[
        "jacobian",
        "--denoiser",
        &spec,
        "--input",
        s(&train),
        "--sigmas",
        "1",
    ]));
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    // Three training points: rank of the posterior covariance is at most 2.
    assert!(results
        .iter()
        .all(|r| r["effective_rank"].as_u64().unwrap() <= 2));
    let o = regimes(&[
        "gap",
        "--a",
        "nonsense",
        "--b",
        &spec,
        "--points",
        s(&train),
    ]);
    fails_with(&o, &["empirical:T.npy"]);
}
