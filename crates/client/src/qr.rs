//! QR codes for share links and safety numbers, rendered in memory (SVG text, PNG bytes, or text
//! for a terminal). Nothing is written to disk.

use image::{ImageFormat, Luma};
use qrcode::render::{svg, unicode};
use qrcode::QrCode;

use crate::error::ProfileError;
use crate::ClientError;

fn code(text: &str) -> Result<QrCode, ClientError> {
    QrCode::new(text.as_bytes())
        .map_err(|e| ClientError::Profile(ProfileError::Storage(format!("QR: {e}"))))
}

pub fn svg(text: &str) -> Result<String, ClientError> {
    Ok(code(text)?
        .render::<svg::Color>()
        .min_dimensions(256, 256)
        .build())
}

pub fn png(text: &str) -> Result<Vec<u8>, ClientError> {
    let img = code(text)?
        .render::<Luma<u8>>()
        .min_dimensions(256, 256)
        .build();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .map_err(|e| ClientError::Profile(ProfileError::Storage(format!("QR: {e}"))))?;
    Ok(out.into_inner())
}

/// Two rows of modules per line of text, for a terminal.
pub fn terminal(text: &str) -> Result<String, ClientError> {
    Ok(code(text)?
        .render::<unicode::Dense1x2>()
        .dark_color(unicode::Dense1x2::Light)
        .light_color(unicode::Dense1x2::Dark)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_decodes_back_to_the_link() {
        let link = "anonchat://add?u=alice&c=123456";
        let bytes = png(link).unwrap();
        let img = image::load_from_memory(&bytes).unwrap().to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(img);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, link);
        assert!(svg(link).unwrap().starts_with("<?xml"));
        assert!(!terminal(link).unwrap().is_empty());
    }
}
