//! The webcam, in memory only. Frames come from `nokhwa` as RGB images, are encoded to JPEG in a
//! zeroized buffer or searched for a QR code, and never touch disk. Every frame buffer is wiped
//! when dropped.
//!
//! There is no camera on CI: a synthetic source plugs in behind nokhwa's own backend trait
//! (`CaptureBackendTrait`), so tests run the same capture and decode path as a real webcam.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;

use image::codecs::jpeg::JpegEncoder;
use image::RgbImage;
use nokhwa::camera_traits::CaptureBackendTrait;
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{
    ApiBackend, CameraControl, CameraFormat, CameraIndex, CameraInfo, ControlValueSetter,
    FrameFormat, KnownCameraControl, RequestedFormat, RequestedFormatType, Resolution,
};
use nokhwa::{Buffer, Camera, NokhwaError};
use zeroize::{Zeroize, Zeroizing};

use crate::ClientError;

/// What the user is told when there is no camera to use.
pub const NO_CAMERA: &str = "No camera found. Connect a camera, or add the contact by username.";

/// A camera as a front-end lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CameraView {
    pub index: u32,
    pub name: String,
}

/// Where frames come from.
#[derive(Clone, Default)]
pub enum Source {
    /// The platform's cameras (V4L2, AVFoundation, Media Foundation).
    #[default]
    Native,
    /// A still image file shown as a camera, read each time the camera opens, for tests (only
    /// debug builds let a binary pick it).
    Synthetic(PathBuf),
}

/// In debug builds the variable names a still image to use as the camera (tests have none).
pub const SYNTHETIC_CAMERA_ENV: &str = "ANONCHAT_SYNTHETIC_CAMERA";

impl Source {
    /// The platform's cameras; in a debug build, the image named by [`SYNTHETIC_CAMERA_ENV`]
    /// instead when it is set. Release builds never read the variable.
    pub fn for_this_build() -> Result<Source, ClientError> {
        if !cfg!(debug_assertions) {
            return Ok(Source::Native);
        }
        Ok(match std::env::var_os(SYNTHETIC_CAMERA_ENV) {
            None => Source::Native,
            Some(path) => Source::Synthetic(path.into()),
        })
    }
}

/// One captured frame; its pixels are wiped on drop.
pub struct Frame(RgbImage);

impl Frame {
    /// A frame from pixels already in memory (the fuzz harness's camera).
    pub(crate) fn from_image(img: RgbImage) -> Self {
        Frame(img)
    }

    pub fn image(&self) -> &RgbImage {
        &self.0
    }

    /// JPEG bytes in a zeroized buffer, scaled down so the longer side is at most `max_side`.
    pub fn jpeg(&self, max_side: u32, quality: u8) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        let (w, h) = self.0.dimensions();
        let scaled;
        let img = if w.max(h) > max_side {
            let (nw, nh) = if w >= h {
                (max_side, (h * max_side / w).max(1))
            } else {
                ((w * max_side / h).max(1), max_side)
            };
            scaled = Frame(image::imageops::thumbnail(&self.0, nw, nh));
            &scaled.0
        } else {
            &self.0
        };
        let mut out = Zeroizing::new(Vec::with_capacity(64 * 1024));
        JpegEncoder::new_with_quality(&mut *out, quality)
            .encode_image(img)
            .map_err(|e| ClientError::Camera(format!("JPEG: {e}")))?;
        Ok(out)
    }

    /// The text of the first QR code in the frame, if one decodes.
    pub fn qr_text(&self) -> Option<Zeroizing<String>> {
        let luma = Zeroizing::new(image::imageops::grayscale(&self.0).into_raw());
        let (w, h) = self.0.dimensions();
        let mut prepared =
            rqrr::PreparedImage::prepare_from_greyscale(w as usize, h as usize, |x, y| {
                luma[y * w as usize + x]
            });
        prepared.detect_grids().into_iter().find_map(|grid| {
            let mut bytes = Zeroizing::new(Vec::new());
            grid.decode_to(&mut *bytes).ok()?;
            let text = std::str::from_utf8(&bytes).ok()?;
            Some(Zeroizing::new(text.to_owned()))
        })
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        let pixels: &mut [u8] = &mut self.0;
        pixels.zeroize();
    }
}

fn cam_err(e: NokhwaError) -> ClientError {
    ClientError::Camera(e.to_string())
}

/// The cameras there are (maybe none).
pub fn list(source: &Source) -> Result<Vec<CameraView>, ClientError> {
    match source {
        Source::Synthetic(_) => Ok(vec![CameraView {
            index: 0,
            name: "Synthetic camera".into(),
        }]),
        Source::Native => {
            let Some(api) = nokhwa::native_api_backend() else {
                return Ok(Vec::new());
            };
            Ok(nokhwa::query(api)
                .map_err(cam_err)?
                .into_iter()
                .filter_map(|info| match info.index() {
                    CameraIndex::Index(i) => Some(CameraView {
                        index: *i,
                        name: info.human_name(),
                    }),
                    CameraIndex::String(_) => None,
                })
                .collect())
        }
    }
}

/// An open camera stream. Blocking: run it on a blocking thread.
pub struct Capture(Camera);

impl Capture {
    pub fn open(source: &Source, index: u32) -> Result<Self, ClientError> {
        let camera = match source {
            Source::Synthetic(path) => {
                let image = image::open(path)
                    .map_err(|e| ClientError::Camera(format!("synthetic camera {path:?}: {e}")))?;
                Camera::with_custom(
                    CameraIndex::Index(index),
                    ApiBackend::Network,
                    Box::new(Synthetic::new(&image.to_rgb8())?),
                )
            }
            Source::Native => {
                if list(source)?.is_empty() {
                    return Err(ClientError::Camera(NO_CAMERA.into()));
                }
                // Enough for a photo in a chat and for reading a QR code; cameras pick the nearest.
                let wanted = CameraFormat::new(Resolution::new(1280, 720), FrameFormat::MJPEG, 30);
                Camera::new(
                    CameraIndex::Index(index),
                    RequestedFormat::new::<RgbFormat>(RequestedFormatType::Closest(wanted)),
                )
                .map_err(cam_err)?
            }
        };
        let mut capture = Capture(camera);
        capture.0.open_stream().map_err(cam_err)?;
        Ok(capture)
    }

    pub fn frame(&mut self) -> Result<Frame, ClientError> {
        let buffer = self.0.frame().map_err(cam_err)?;
        let image = buffer.decode_image::<RgbFormat>().map_err(cam_err);
        wipe_buffer(buffer);
        Ok(Frame(image?))
    }
}

/// nokhwa's `Buffer` holds the raw frame in `bytes::Bytes`, which cannot be wiped in place; take
/// the bytes back out and wipe them when we hold the only reference.
fn wipe_buffer(buffer: Buffer) {
    let bytes = buffer.buffer_bytes();
    drop(buffer);
    if let Ok(mut raw) = bytes.try_into_mut() {
        raw.as_mut().zeroize();
    }
}

/// A camera that shows one still image, as MJPEG frames like most webcams send.
struct Synthetic {
    info: CameraInfo,
    format: CameraFormat,
    jpeg: Vec<u8>,
    open: bool,
}

impl Synthetic {
    fn new(image: &RgbImage) -> Result<Self, ClientError> {
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(image)
            .map_err(|e| ClientError::Camera(format!("JPEG: {e}")))?;
        let (w, h) = image.dimensions();
        Ok(Synthetic {
            info: CameraInfo::new(
                "Synthetic camera",
                "a still image",
                "",
                CameraIndex::Index(0),
            ),
            format: CameraFormat::new(Resolution::new(w, h), FrameFormat::MJPEG, 30),
            jpeg,
            open: false,
        })
    }

    fn unsupported() -> NokhwaError {
        NokhwaError::UnsupportedOperationError(ApiBackend::Network)
    }
}

impl CaptureBackendTrait for Synthetic {
    fn backend(&self) -> ApiBackend {
        ApiBackend::Network
    }
    fn camera_info(&self) -> &CameraInfo {
        &self.info
    }
    fn refresh_camera_format(&mut self) -> Result<(), NokhwaError> {
        Ok(())
    }
    fn camera_format(&self) -> CameraFormat {
        self.format
    }
    fn set_camera_format(&mut self, _: CameraFormat) -> Result<(), NokhwaError> {
        Err(Self::unsupported())
    }
    fn compatible_list_by_resolution(
        &mut self,
        _: FrameFormat,
    ) -> Result<HashMap<Resolution, Vec<u32>>, NokhwaError> {
        Ok(HashMap::from([(self.format.resolution(), vec![30])]))
    }
    fn compatible_fourcc(&mut self) -> Result<Vec<FrameFormat>, NokhwaError> {
        Ok(vec![FrameFormat::MJPEG])
    }
    fn resolution(&self) -> Resolution {
        self.format.resolution()
    }
    fn set_resolution(&mut self, _: Resolution) -> Result<(), NokhwaError> {
        Err(Self::unsupported())
    }
    fn frame_rate(&self) -> u32 {
        30
    }
    fn set_frame_rate(&mut self, _: u32) -> Result<(), NokhwaError> {
        Err(Self::unsupported())
    }
    fn frame_format(&self) -> FrameFormat {
        FrameFormat::MJPEG
    }
    fn set_frame_format(&mut self, _: FrameFormat) -> Result<(), NokhwaError> {
        Err(Self::unsupported())
    }
    fn camera_control(&self, _: KnownCameraControl) -> Result<CameraControl, NokhwaError> {
        Err(Self::unsupported())
    }
    fn camera_controls(&self) -> Result<Vec<CameraControl>, NokhwaError> {
        Ok(Vec::new())
    }
    fn set_camera_control(
        &mut self,
        _: KnownCameraControl,
        _: ControlValueSetter,
    ) -> Result<(), NokhwaError> {
        Err(Self::unsupported())
    }
    fn open_stream(&mut self) -> Result<(), NokhwaError> {
        self.open = true;
        Ok(())
    }
    fn is_stream_open(&self) -> bool {
        self.open
    }
    fn frame(&mut self) -> Result<Buffer, NokhwaError> {
        if !self.open {
            return Err(NokhwaError::ReadFrameError("stream not open".into()));
        }
        // Paced like a 30 fps camera, so a capture loop behaves as it would on hardware.
        std::thread::sleep(std::time::Duration::from_millis(33));
        Ok(Buffer::new(
            self.format.resolution(),
            &self.jpeg,
            FrameFormat::MJPEG,
        ))
    }
    fn frame_raw(&mut self) -> Result<Cow<'_, [u8]>, NokhwaError> {
        Ok(Cow::Borrowed(&self.jpeg))
    }
    fn stop_stream(&mut self) -> Result<(), NokhwaError> {
        self.open = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qr_file(text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("anonchat-camera-{}.png", std::process::id()));
        std::fs::write(&path, crate::qr::png(text).unwrap()).unwrap();
        path
    }

    #[test]
    fn a_synthetic_camera_frame_goes_through_nokhwa_and_its_qr_decodes() {
        let link = "anonchat://add?u=alice&c=123456";
        let path = qr_file(link);
        let source = Source::Synthetic(path.clone());
        assert_eq!(list(&source).unwrap().len(), 1);
        let mut capture = Capture::open(&source, 0).unwrap();
        std::fs::remove_file(path).unwrap();
        let frame = capture.frame().unwrap();
        assert_eq!(frame.qr_text().as_deref().map(String::as_str), Some(link));
        let jpeg = frame.jpeg(128, 80).unwrap();
        let back = image::load_from_memory(&jpeg).unwrap();
        assert!(back.width() <= 128 && back.height() <= 128);
    }

    #[test]
    fn a_frame_without_a_code_reads_as_none() {
        let blank = RgbImage::from_pixel(320, 240, image::Rgb([200, 200, 200]));
        assert!(Frame(blank).qr_text().is_none());
    }

    /// The real platform enumeration: on a machine without a camera it is an empty list and
    /// opening says so plainly (no panic, no V4L2 jargon).
    #[test]
    fn no_camera_is_a_clear_message() {
        if !list(&Source::Native).unwrap().is_empty() {
            return; // This machine has a camera; the message cannot be checked here.
        }
        match Capture::open(&Source::Native, 0) {
            Err(ClientError::Camera(m)) => assert_eq!(m, NO_CAMERA),
            Err(e) => panic!("unexpected error: {e}"),
            Ok(_) => panic!("opened a camera that is not there"),
        }
    }
}
