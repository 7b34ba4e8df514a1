//! Data: synthetic distributions that know their exact denoiser, array files,
//! image datasets, and nested training subsets.

mod cifar;
mod idx;
pub mod images;
mod labels;
pub mod npy;
pub mod npz;
mod png_dir;
mod saved;
mod synthetic;
mod training_set;

pub use images::{ImageFormat, ImageImport, Images};
pub use labels::{check_label_count, read_labels, write_labels};
pub use png_dir::write_png;
pub use saved::{load_distribution, SPEC_FILE};
pub use synthetic::{Spectrum, Synthetic, SyntheticSpec, FRESH_ROWS};
pub use training_set::{
    data_file, disjoint_subset, examples_from, examples_in, heldout_set, load_examples,
    nested_subset, permutation, sigma_data, training_labels, training_part, training_set,
};
