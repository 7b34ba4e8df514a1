//! The `jacobian_rank` experiment (`diffusion_regimes::experiments::JacobianRank`, also
//! `regimes run jacobian_rank`):
//!
//! cargo run --release --bin jacobian_rank -- experiments/configs/jacobian_rank.toml

fn main() -> std::process::ExitCode {
    diffusion_regimes::cli::experiment_main("jacobian_rank")
}
