//! A folder of same-size PNG images (`*.png`, read in file-name order), and
//! PNG encoding of 8-bit pixels. Palette and low-bit images are expanded to
//! 8 bits, 16-bit ones are reduced to 8, and alpha is dropped.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::io::{read, write_atomic};
use crate::{Error, Result};

/// The images of every `*.png` in `dir` as u8 [N, C, H, W]: C = 1 when all are
/// grayscale, else 3 (grayscale ones repeated into red, green and blue). A
/// folder with no PNG of its own but one subfolder of PNGs per class is
/// read subfolder after subfolder (in name order), and each image gets its
/// subfolder's position in that order as its label (torchvision's
/// ImageFolder convention; THEORY §10).
pub fn read_png_dir(dir: &Path) -> Result<(Tensor, Option<Vec<u32>>)> {
    if !dir.is_dir() {
        return Err(Error::format(dir, "is not a folder of PNG images"));
    }
    let files = png_files(dir)?;
    if !files.is_empty() {
        return Ok((stack(&files)?, None));
    }
    let mut classes: Vec<PathBuf> = entries(dir)?.into_iter().filter(|p| p.is_dir()).collect();
    classes.sort();
    let mut files = Vec::new();
    let mut labels = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let of_class = png_files(class)?;
        labels.extend(std::iter::repeat_n(label as u32, of_class.len()));
        files.extend(of_class);
    }
    match files.is_empty() {
        true => Err(Error::format(
            dir,
            "holds no *.png files, nor subfolders of them (one per class)",
        )),
        false => Ok((stack(&files)?, Some(labels))),
    }
}

fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    Ok(entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
}

/// The `*.png` files directly in `dir`, in name order.
fn png_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = entries(dir)?
        .into_iter()
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x.eq_ignore_ascii_case("png")))
        .collect();
    files.sort();
    Ok(files)
}

/// The images of `files` (at least one), of one size, stacked.
fn stack(files: &[PathBuf]) -> Result<Tensor> {
    let first = &files[0];
    let images: Vec<Decoded> = files.iter().map(|f| decode(f)).collect::<Result<_>>()?;
    let (width, height) = (images[0].width, images[0].height);
    if let Some((file, image)) = files
        .iter()
        .zip(&images)
        .find(|(_, i)| (i.width, i.height) != (width, height))
    {
        return Err(Error::format(
            file,
            format!(
                "is {}x{} but {} is {width}x{height}; every image in the folder must have one size",
                image.width,
                image.height,
                first.display()
            ),
        ));
    }
    let channels = images.iter().map(|i| i.channels).max().unwrap_or(1);
    let mut pixels: Vec<u8> = Vec::with_capacity(images.len() * channels * width * height);
    for image in &images {
        for c in 0..channels {
            // A grayscale image gives its one plane to every channel.
            let c = c.min(image.channels - 1);
            pixels.extend(image.planes[c * width * height..][..width * height].iter());
        }
    }
    Ok(Tensor::from_vec(
        pixels,
        (images.len(), channels, height, width),
        &Device::Cpu,
    )?)
}

/// One decoded image: `channels` (1 or 3) planes of height x width bytes.
struct Decoded {
    width: usize,
    height: usize,
    channels: usize,
    planes: Vec<u8>,
}

fn decode(path: &Path) -> Result<Decoded> {
    let bad = |e: png::DecodingError| Error::format(path, format!("not a readable PNG: {e}"));
    let bytes = read(path)?;
    let mut decoder = png::Decoder::new(bytes.as_slice());
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(bad)?;
    let mut buffer = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buffer).map_err(bad)?;
    let (width, height) = (info.width as usize, info.height as usize);
    let (stride, channels) = match info.color_type {
        png::ColorType::Grayscale => (1, 1),
        png::ColorType::GrayscaleAlpha => (2, 1),
        png::ColorType::Rgb => (3, 3),
        png::ColorType::Rgba => (4, 3),
        other => {
            return Err(Error::format(
                path,
                format!("color type {other:?} is not supported"),
            ))
        }
    };
    let interleaved = &buffer[..info.buffer_size()];
    let mut planes = vec![0; channels * width * height];
    for (p, pixel) in interleaved.chunks_exact(stride).enumerate() {
        for c in 0..channels {
            planes[c * width * height + p] = pixel[c];
        }
    }
    Ok(Decoded {
        width,
        height,
        channels,
        planes,
    })
}

/// Writes 8-bit pixels `planes` ([C, H, W] with C = 1 or 3) as a PNG, atomically.
pub fn write_png(
    path: &Path,
    planes: &[u8],
    channels: usize,
    height: usize,
    width: usize,
) -> Result<()> {
    let color = match channels {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        c => return Err(Error::invalid("PNG channels", c, "must be 1 or 3")),
    };
    let plane = height * width;
    if planes.len() != channels * plane {
        return Err(Error::shape(
            format!("pixels of {}", path.display()),
            format!("{channels}x{height}x{width}"),
            planes.len(),
        ));
    }
    let interleaved: Vec<u8> = (0..plane)
        .flat_map(|p| (0..channels).map(move |c| planes[c * plane + p]))
        .collect();
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width as u32, height as u32);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    let encode = |e: png::EncodingError| Error::format(path, format!("PNG encoding failed: {e}"));
    let mut writer = encoder.write_header().map_err(encode)?;
    writer.write_image_data(&interleaved).map_err(encode)?;
    writer.finish().map_err(encode)?;
    write_atomic(path, &bytes)
}
