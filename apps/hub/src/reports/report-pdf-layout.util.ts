/**
 * The PDF report's typography and layout primitives (title, headings, paragraphs, label/value fields, tables) over a
 * pdfkit document, and how figures and text are printed in it. The report's sections are report-pdf.util.ts's.
 */
/** How every figure is printed in the PDF (tests format the JSON's numbers the same way to compare). */
export function formatFigure(value: number | null): string {
  return value === null ? 'n/a' : value.toFixed(4);
}

/** Mechanism parameters to six significant digits (the JSON holds them exactly). */
export function compact(value: number): string {
  return String(Number(value.toPrecision(6)));
}

/**
 * pdfkit's built-in Helvetica (no font file, nothing fetched) encodes WinAnsi only: Greek letters and most symbols
 * would print as garbage, so text is kept to Latin-1 and symbols are spelled out.
 */
export function pdfText(value: string): string {
  return value
    .replace(/σ/g, 'sigma')
    .replace(/ε/g, 'epsilon')
    .replace(/δ/g, 'delta')
    .replace(/[‐-―]/g, '-')
    .replace(/…/g, '...')
    .replace(/[^\u0020-\u007e\u00a0-\u00ff]/g, '?');
}

export const MARGIN = 50;
const FONT = 'Helvetica';
const BOLD = 'Helvetica-Bold';
export const MONO = 'Courier';
const BODY = 9;

export interface Column {
  header: string;
  /** Points; the widths of a table add up to the text width (495 pt on A4), so hashes and times never wrap. */
  width: number;
  mono?: boolean;
  /** Font size in points (default 8; hashes in Courier at 6 fit 64 hex digits in 236 pt). */
  size?: number;
}

/** Builds the document on a pdfkit instance; kept apart from the stream plumbing below. */
export class ReportLayout {
  constructor(private readonly doc: PDFKit.PDFDocument) {}

  private get width(): number {
    return this.doc.page.width - 2 * MARGIN;
  }

  private ensure(space: number): void {
    if (this.doc.y + space > this.doc.page.height - MARGIN) this.doc.addPage();
  }

  title(text: string): void {
    this.doc.font(BOLD).fontSize(16).text(pdfText(text), MARGIN, this.doc.y, { width: this.width });
    this.doc.moveDown(0.3);
  }

  heading(text: string): void {
    this.ensure(60);
    this.doc.moveDown(0.8);
    this.doc.font(BOLD).fontSize(12).text(pdfText(text), MARGIN, this.doc.y, { width: this.width });
    this.doc.moveDown(0.3);
  }

  paragraph(text: string, font = FONT): void {
    this.ensure(30);
    this.doc.font(font).fontSize(BODY).text(pdfText(text), MARGIN, this.doc.y, { width: this.width });
    this.doc.moveDown(0.3);
  }

  /** "label: value" lines; values in Courier when they are hashes, so they read (and extract) unbroken. */
  fields(rows: [string, string, boolean?][]): void {
    const labelWidth = 120;
    for (const [label, value, mono] of rows) {
      const valueWidth = this.width - labelWidth;
      const valueFont = mono ? MONO : FONT;
      this.doc.font(valueFont).fontSize(mono ? 7 : BODY);
      const height = Math.max(12, this.doc.heightOfString(pdfText(value), { width: valueWidth }) + 3);
      this.ensure(height);
      const y = this.doc.y;
      this.doc
        .font(BOLD)
        .fontSize(BODY)
        .text(pdfText(label), MARGIN, y, { width: labelWidth - 6 });
      this.doc
        .font(valueFont)
        .fontSize(mono ? 7 : BODY)
        .text(pdfText(value), MARGIN + labelWidth, y, { width: valueWidth });
      this.doc.y = y + height;
    }
    this.doc.x = MARGIN;
  }

  table(columns: Column[], rows: string[][]): void {
    const scale = this.width / columns.reduce((sum, c) => sum + c.width, 0);
    const widths = columns.map((c) => c.width * scale);
    const fontOf = (i: number, header: boolean): [string, number] =>
      header ? [BOLD, 8] : [columns[i]!.mono ? MONO : FONT, columns[i]!.size ?? 8];
    const drawRow = (cells: string[], header: boolean) => {
      const heights = cells.map((cell, i) => {
        const [font, size] = fontOf(i, header);
        return this.doc
          .font(font)
          .fontSize(size)
          .heightOfString(pdfText(cell), { width: widths[i]! - 4 });
      });
      const height = Math.max(...heights) + 4;
      this.ensure(height + (header ? 14 : 0));
      const y = this.doc.y;
      let x = MARGIN;
      cells.forEach((cell, i) => {
        const [font, size] = fontOf(i, header);
        this.doc
          .font(font)
          .fontSize(size)
          .text(pdfText(cell), x + 2, y + 2, { width: widths[i]! - 4 });
        x += widths[i]!;
      });
      this.doc
        .moveTo(MARGIN, y + height)
        .lineTo(MARGIN + this.width, y + height)
        .lineWidth(header ? 0.8 : 0.3)
        .strokeColor(header ? '#000000' : '#999999')
        .stroke();
      this.doc.y = y + height;
    };
    drawRow(
      columns.map((c) => c.header),
      true,
    );
    for (const row of rows) drawRow(row, false);
    this.doc.x = MARGIN;
    this.doc.moveDown(0.3);
  }
}
