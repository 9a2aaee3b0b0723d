import SparsityCore
import SparsityFormats

/// Draws a mask (a weight's zero pattern) as an SVG picture, like the pattern figures of the
/// talk: kept elements dark, zeros white.
///
/// Matrices up to `maximumCells` on each side are drawn element by element. Larger ones are
/// downsampled by a power of two `f`, so that 2:4 groups and power-of-two blocks stay aligned
/// to cells: each cell covers `f × f` elements and its shade is the fraction kept there (eight
/// shades from white to the darkest blue).
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
    let cellRows = max(1, (rows + factor - 1) / factor)
    let cellColumns = max(1, (columns + factor - 1) / factor)
    let cellSize = max(2, min(24, 768 / max(cellRows, cellColumns)))
    let levels = 8
    // Shade level per cell: 0 = nothing kept … levels = everything kept.
    var shade = [Int](repeating: 0, count: cellRows * cellColumns)
    if rows > 0 && columns > 0 {
      var kept = [Int](repeating: 0, count: cellRows * cellColumns)
      mask.tensor.withUnsafeBufferPointer(as: Bool.self) { keep in
        for r in 0..<rows {
          for c in 0..<columns where keep[r * columns + c] { kept[(r / factor) * cellColumns + c / factor] += 1 }
        }
      }
      for cr in 0..<cellRows {
        for cc in 0..<cellColumns {
          let size = (min(rows, (cr + 1) * factor) - cr * factor) * (min(columns, (cc + 1) * factor) - cc * factor)
          let fraction = Double(kept[cr * cellColumns + cc]) / Double(size)
          // Round, but never show a partly kept cell as empty or as full.
          var level = Int((fraction * Double(levels)).rounded())
          if fraction > 0 && level == 0 { level = 1 }
          if fraction < 1 && level == levels { level = levels - 1 }
          shade[cr * cellColumns + cc] = level
        }
      }
    }
    let top = 44
    let width = cellColumns * cellSize
    let height = cellRows * cellSize
    let keptFraction = mask.tensor.count == 0 ? 0 : Double(mask.keptCount) / Double(mask.tensor.count)
    let scale = factor == 1 ? "one cell per element" : "one cell per \(factor)×\(factor) elements, shade = fraction kept"
    var svg = """
      <svg xmlns="http://www.w3.org/2000/svg" width="\(max(width, 360) + 2)" height="\(height + top + 2)" \
      viewBox="0 0 \(max(width, 360) + 2) \(height + top + 2)" font-family="sans-serif">
      <text x="1" y="16" font-size="14" font-weight="bold">\(escape(title))</text>
      <text x="1" y="34" font-size="11">\(rows)×\(columns), \(percent(1 - keptFraction)) zeros; dark = kept, white = zero; \(scale)</text>
      <rect x="1" y="\(top + 1)" width="\(width)" height="\(height)" fill="#ffffff" stroke="#888" stroke-width="1"/>

      """
    // One rect per horizontal run of equal, non-empty shade.
    for cr in 0..<cellRows {
      var cc = 0
      while cc < cellColumns {
        let level = shade[cr * cellColumns + cc]
        var end = cc + 1
        while end < cellColumns && shade[cr * cellColumns + end] == level { end += 1 }
        if level > 0 {
          svg += "<rect x=\"\(1 + cc * cellSize)\" y=\"\(top + 1 + cr * cellSize)\" width=\"\((end - cc) * cellSize)\" height=\"\(cellSize)\" fill=\"\(color(level, of: levels))\"/>\n"
        }
        cc = end
      }
    }
    if factor == 1 && cellSize >= 8 {
      // Grid lines between elements, as in the talk's figures.
      var path = ""
      for r in 1..<max(cellRows, 1) { path += "M1 \(top + 1 + r * cellSize)h\(width)" }
      for c in 1..<max(cellColumns, 1) { path += "M\(1 + c * cellSize) \(top + 1)v\(height)" }
      if !path.isEmpty { svg += "<path d=\"\(path)\" stroke=\"#bbb\" stroke-width=\"0.5\"/>\n" }
    }
    svg += "</svg>\n"
    return svg
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
