//! `regimes data`: synthetic draws with their distribution, or imported images.

use std::path::Path;

use candle_core::DType;

use diffusion_regimes::data::images::write_dataset;
use diffusion_regimes::data::npy::write_npy;
use diffusion_regimes::data::write_labels;
use diffusion_regimes::data::{ImageImport, Spectrum, Synthetic, SyntheticSpec};
use diffusion_regimes::io::write_folder;
use diffusion_regimes::{Error, Result};

use crate::args::DataKind;

pub(crate) fn make_data(kind: DataKind) -> Result<()> {
    let (spec, common) = match kind {
        DataKind::Molrg {
            ambient,
            components,
            rank,
            floor,
            common,
        } => (
            SyntheticSpec::Molrg {
                ambient,
                ranks: vec![rank; components],
                floor,
            },
            common,
        ),
        DataKind::Gmm {
            ambient,
            components,
            mean_scale,
            std,
            common,
        } => (
            SyntheticSpec::Gmm {
                ambient,
                components,
                mean_scale,
                std,
            },
            common,
        ),
        DataKind::Gaussian {
            ambient,
            scale,
            exponent,
            common,
        } => {
            let spectrum = match exponent {
                None => Spectrum::Isotropic { variance: scale },
                Some(exponent) => Spectrum::PowerLaw { scale, exponent },
            };
            (SyntheticSpec::Gaussian { ambient, spectrum }, common)
        }
        DataKind::Import {
            path,
            format,
            size,
            grayscale,
            limit,
            array,
            labels,
            out,
        } => {
            let import = ImageImport {
                format,
                size,
                grayscale,
                limit,
                array,
                labels,
            };
            return import_images(&path, &import, &out);
        }
    };
    if common.n == 0 {
        return Err(Error::invalid("--n", 0, "must be at least 1"));
    }
    let dist = Synthetic::new(spec, common.seed)?;
    let data = dist.sample(common.n)?;
    write_folder(&common.out, |dir| {
        write_npy(&dir.join("data.npy"), &data, DType::F32)?;
        write_labels(&dir.join("labels.npy"), &dist.labels(0, common.n))?;
        dist.save(dir)
    })?;
    eprintln!(
        "wrote {} rows to {}",
        common.n,
        common.out.join("data.npy").display()
    );
    Ok(())
}

/// Reads every image first, so a bad input leaves no output behind.
fn import_images(path: &Path, import: &ImageImport, out: &Path) -> Result<()> {
    let images = import.read(path)?;
    write_dataset(out, &images, import, path)?;
    eprintln!(
        "read {:?} from {}; wrote {:?} to {}",
        images.source_shape,
        path.display(),
        images.pixels.dims(),
        out.join("data.npy").display()
    );
    Ok(())
}
