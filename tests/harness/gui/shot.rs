//! Screenshots of the app window straight from the X server.

/// The largest mapped top-level window on `display` (the app's; there is no window manager) as PNG.
pub(super) fn window_png(display: &str) -> anyhow::Result<Vec<u8>> {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{ConnectionExt, ImageFormat, MapState};
    let (conn, screen) = x11rb::connect(Some(display))?;
    let root = conn.setup().roots[screen].root;
    let mut best = None;
    for w in conn.query_tree(root)?.reply()?.children {
        if conn.get_window_attributes(w)?.reply()?.map_state != MapState::VIEWABLE {
            continue;
        }
        let g = conn.get_geometry(w)?.reply()?;
        let area = u32::from(g.width) * u32::from(g.height);
        if best.is_none_or(|(_, _, _, a)| area > a) {
            best = Some((w, g.width, g.height, area));
        }
    }
    let (w, width, height, _) = best.ok_or_else(|| anyhow::anyhow!("no window is mapped"))?;
    let img = conn
        .get_image(ImageFormat::Z_PIXMAP, w, 0, 0, width, height, !0)?
        .reply()?;
    // 24-bit depth, 32 bits per pixel, little-endian: B, G, R, unused.
    let rgb: Vec<u8> = img
        .data
        .chunks_exact(4)
        .flat_map(|px| [px[2], px[1], px[0]])
        .collect();
    let image = image::RgbImage::from_raw(u32::from(width), u32::from(height), rgb)
        .ok_or_else(|| anyhow::anyhow!("short image"))?;
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, image::ImageFormat::Png)?;
    Ok(png.into_inner())
}
