import SparsityCore
import SparsityFormats

/// Draws a mask (a weight's zero pattern) as an SVG picture, like the pattern figures of the
/// talk: kept elements dark, zeros white.
///
/// Matrices up to `maximumCells` on each side are drawn element by element. Larger ones are
/// downsampled by a power of two `f`, so that 2:4 groups and power-of-two blocks stay aligned
/// to cells: each cell covers `f × f` elements and its shade is the fraction kept there (eight
/// shades from white to the darkest blue); beside that overview, a full-resolution detail of
/// the top-left 32×64 elements keeps fine structure such as 2:4 groups visible.
///
/// ```swift
/// let svg = MaskPicture.svg(Mask(nonzerosOf: weight), title: "fc1.weight")
/// ```
public enum MaskPicture {
  /// The SVG document.
  ///
  /// - Parameters:
  ///   - mask: the mask, viewed as a matrix `[count / last, last]`.
  ///   - title: shown above the picture.
  ///   - maximumCells: the most cells along either side (default 128).
  public static func svg(_ mask: Mask, title: String, maximumCells: Int = 128) -> String {
    let (rows, columns) = mask.matrixShape
    var factor = 1
    while (rows + factor - 1) / factor > maximumCells || (columns + factor - 1) / factor > maximumCells {
      factor *= 2
    }
    let keptFraction = mask.tensor.count == 0 ? 0 : Double(mask.keptCount) / Double(mask.tensor.count)
    let top = 62
    var body = ""
    var width = 0
    var height = 0
    mask.tensor.withUnsafeBufferPointer(as: Bool.self) { keep in
      let overview = panel(
        keep, rows: rows, columns: columns, region: (0..<rows, 0..<columns), factor: factor,
        left: 1, top: top, maximumSide: 768)
      body += overview.svg
      width = overview.width + 1
      height = overview.height
      if factor > 1 {
        // A full-resolution detail of the top-left corner, so fine structure (2:4 groups,
        // small blocks) stays visible next to the downsampled overview.
        let detail = panel(
          keep, rows: rows, columns: columns, region: (0..<min(rows, 32), 0..<min(columns, 64)),
          factor: 1, left: width + 24, top: top, maximumSide: 512)
        body +=
          "<text x=\"\(width + 24)\" y=\"\(top - 6)\" font-size=\"11\">detail: rows 0–\(min(rows, 32) - 1), columns 0–\(min(columns, 64) - 1), one cell per element</text>\n"
        body += detail.svg
        width += 24 + detail.width
        height = max(height, detail.height)
      }
    }
    let scale =
      factor == 1
      ? "one cell per element" : "overview: one cell per \(factor)×\(factor) elements, shade = fraction kept"
    let totalWidth = max(width, 420) + 2
    return """
      <svg xmlns="http://www.w3.org/2000/svg" width="\(totalWidth)" height="\(height + top + 2)" \
      viewBox="0 0 \(totalWidth) \(height + top + 2)" font-family="sans-serif">
      <text x="1" y="16" font-size="14" font-weight="bold">\(escape(title))</text>
      <text x="1" y="33" font-size="11">\(rows)×\(columns), \(percent(1 - keptFraction)) zeros; dark = kept, white = zero</text>
      <text x="1" y="48" font-size="11">\(scale)</text>
      \(body)</svg>

      """
  }

  /// One picture panel: the cells of `region` at `factor` elements per cell side.
  private static func panel(
    _ keep: UnsafeBufferPointer<Bool>, rows: Int, columns: Int, region: (Range<Int>, Range<Int>),
    factor: Int, left: Int, top: Int, maximumSide: Int
  ) -> (svg: String, width: Int, height: Int) {
    let (rr, cc) = region
    let cellRows = max(1, (rr.count + factor - 1) / factor)
    let cellColumns = max(1, (cc.count + factor - 1) / factor)
    let cellSize = max(2, min(24, maximumSide / max(cellRows, cellColumns)))
    let levels = 8
    // Shade level per cell: 0 = nothing kept … levels = everything kept.
    var kept = [Int](repeating: 0, count: cellRows * cellColumns)
    for r in rr {
      for c in cc where keep[r * columns + c] {
        kept[((r - rr.lowerBound) / factor) * cellColumns + (c - cc.lowerBound) / factor] += 1
      }
    }
    var shade = [Int](repeating: 0, count: cellRows * cellColumns)
    for i in 0..<cellRows where !rr.isEmpty {
      for j in 0..<cellColumns where !cc.isEmpty {
        let size = (min(rr.count, (i + 1) * factor) - i * factor) * (min(cc.count, (j + 1) * factor) - j * factor)
        let fraction = Double(kept[i * cellColumns + j]) / Double(size)
        // Round, but never show a partly kept cell as empty or as full.
        var level = Int((fraction * Double(levels)).rounded())
        if fraction > 0 && level == 0 { level = 1 }
        if fraction < 1 && level == levels { level = levels - 1 }
        shade[i * cellColumns + j] = level
      }
    }
    let (width, height) = (cellColumns * cellSize, cellRows * cellSize)
    var svg =
      "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(width)\" height=\"\(height)\" fill=\"#ffffff\" stroke=\"#888\" stroke-width=\"1\"/>\n"
    // One rect per horizontal run of equal, non-empty shade.
    for i in 0..<cellRows {
      var j = 0
      while j < cellColumns {
        let level = shade[i * cellColumns + j]
        var end = j + 1
        while end < cellColumns && shade[i * cellColumns + end] == level { end += 1 }
        if level > 0 {
          svg +=
            "<rect x=\"\(left + j * cellSize)\" y=\"\(top + i * cellSize)\" width=\"\((end - j) * cellSize)\" height=\"\(cellSize)\" fill=\"\(color(level, of: levels))\"/>\n"
        }
        j = end
      }
    }
    if factor == 1 && cellSize >= 6 {
      // Grid lines between elements, as in the talk's figures.
      var path = ""
      for i in 1..<max(cellRows, 1) { path += "M\(left) \(top + i * cellSize)h\(width)" }
      for j in 1..<max(cellColumns, 1) { path += "M\(left + j * cellSize) \(top)v\(height)" }
      if !path.isEmpty { svg += "<path d=\"\(path)\" stroke=\"#bbb\" stroke-width=\"0.5\"/>\n" }
    }
    return (svg, width, height)
  }

  /// White (level 0) to dark blue (level `levels`).
  private static func color(_ level: Int, of levels: Int) -> String {
    let t = Double(level) / Double(levels)
    let (r, g, b) = (255 - t * (255 - 31), 255 - t * (255 - 58), 255 - t * (255 - 147))
    func hex(_ v: Double) -> String {
      let n = Int(v.rounded())
      return String(n, radix: 16).count == 1 ? "0" + String(n, radix: 16) : String(n, radix: 16)
    }
    return "#" + hex(r) + hex(g) + hex(b)
  }

  private static func percent(_ x: Double) -> String {
    let tenths = Int((x * 1000).rounded())
    return "\(tenths / 10).\(tenths % 10)%"
  }

  private static func escape(_ s: String) -> String {
    var out = ""
    for ch in s {
      switch ch {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      default: out.append(ch)
      }
    }
    return out
  }
}
