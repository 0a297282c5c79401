import { canonicalJson, sha256Hex, type AuditBundle } from '@tessera/audit';
import PDFDocument from 'pdfkit';
import type { FairnessView } from '@tessera/protocol';
import { STUDY_REPORT_KIND, type StudyReportSummary } from './study-report';

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

const MARGIN = 50;
const FONT = 'Helvetica';
const BOLD = 'Helvetica-Bold';
const MONO = 'Courier';
const BODY = 9;

interface Column {
  header: string;
  /** Points; the widths of a table add up to the text width (495 pt on A4), so hashes and times never wrap. */
  width: number;
  mono?: boolean;
  /** Font size in points (default 8; hashes in Courier at 6 fit 64 hex digits in 236 pt). */
  size?: number;
}

/** Builds the document on a pdfkit instance; kept apart from the stream plumbing below. */
class ReportLayout {
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

/** Signed difference in points (1 point = 0.01 of a fraction), or '-'. */
function points(value: number | null): string {
  if (value === null) return '-';
  const p = value * 100;
  return `${p >= 0 ? '+' : ''}${p.toFixed(1)}`;
}

/** The fairness view of the final evaluation (docs/personalization.md). */
function fairnessSection(l: ReportLayout, f: FairnessView): void {
  l.heading('Fairness across silos (final evaluation)');
  const label = f.metric === 'accuracy' ? 'accuracy' : 'R2';
  l.fields([
    [
      'Metric',
      `${label} of the final global model on each silo's own test split${f.noisy ? ' (noisy DP estimates)' : ''}`,
    ],
    ['Worst silo', f.worst ? `${f.worst.siloName}: ${formatFigure(f.worst.value)}` : '-'],
    ['Best silo', f.best ? `${f.best.siloName}: ${formatFigure(f.best.value)}` : '-'],
    ['Gap', f.gap === null ? '-' : `${formatFigure(f.gap)} (${points(f.gap)} points)`],
    [
      'Personalized',
      f.summary.personalized
        ? `worst ${formatFigure(f.summary.personalized.worst)}, mean ${formatFigure(f.summary.personalized.mean)} (global: worst ${formatFigure(f.summary.global?.worst ?? null)}, mean ${formatFigure(f.summary.global?.mean ?? null)})`
        : 'not planned (no plan.personalization)',
    ],
  ]);
  const baseline = f.summary.localBaseline !== null;
  const personalized = f.summary.personalized !== null;
  if (!personalized && !baseline) return;
  l.table(
    [
      { header: 'Silo', width: 150 },
      { header: 'Global', width: 60 },
      { header: 'Personalized', width: 70 },
      { header: 'Gain (pts)', width: 60 },
      { header: 'Local only', width: 60 },
      { header: 'Global vs local (pts)', width: 95 },
    ],
    f.silos.map((r) => [
      r.siloName,
      formatFigure(r.global),
      formatFigure(r.personalized),
      points(r.personalizationGain),
      baseline ? formatFigure(r.localBaseline) : '-',
      points(r.changeFromBaseline),
    ]),
  );
}

function short(hash: string | null): string {
  return hash === null ? '-' : hash.slice(0, 16);
}

function layOut(doc: PDFKit.PDFDocument, bundle: AuditBundle, s: StudyReportSummary): void {
  const l = new ReportLayout(doc);
  const first = bundle.records[0]!;
  const last = bundle.records[bundle.records.length - 1]!;
  l.title(`Compliance report: ${s.name}`);
  l.paragraph(
    `Generated by the Tessera hub at ${bundle.generatedAt}. Every figure below is taken from the study summary signed ` +
      'in the machine-readable report (report.json, attached to this PDF), which an auditor verifies offline.',
  );
  l.fields([
    ['Chain head', `record #${s.chainHead.seq} (the report covers the chain up to it)`],
    ['Chain head hash', s.chainHead.hash, true],
  ]);
  l.paragraph(
    `Another format of this same report (JSON, CSV) covers the same head when downloaded with ?upTo=${s.chainHead.seq}; ` +
      'records appended since (this download among them) are not its subject.',
  );

  l.heading('Summary');
  l.fields([
    ['Study', s.name],
    ['Study id', s.id, true],
    ['Purpose', s.purpose],
    ['Status', s.status + (s.endReason === null ? '' : ` (${s.endReason})`)],
    ['Plan version', String(s.planVersion)],
    ['Plan hash', s.planHash, true],
    [
      'Model',
      `${s.model}; ${s.training.rounds} rounds of ${s.training.localEpochs} local epoch(s), ${s.training.algorithm}, server optimizer ${s.training.serverOptimizer}`,
    ],
    ['Created', s.createdAt],
    ['Started', s.startedAt ?? '-'],
    ['Ended', s.endedAt ?? '-'],
  ]);

  l.heading('Participants');
  l.table(
    [
      { header: 'Silo', width: 225 },
      { header: 'Silo id', width: 210, mono: true, size: 7 },
      { header: 'Took part', width: 60 },
    ],
    s.invited.map((silo) => [
      silo.name,
      silo.siloId,
      s.participants.some((p) => p.siloId === silo.siloId) ? 'yes' : 'no',
    ]),
  );

  l.heading('Approvals (each steward approves the exact plan hash)');
  l.table(
    [
      { header: 'Silo', width: 107 },
      { header: 'Decision', width: 48 },
      { header: 'Plan hash', width: 236, mono: true, size: 6 },
      { header: 'Decided at (UTC)', width: 104 },
    ],
    s.approvals.map((a) => [a.siloName, a.decision ?? 'undecided', a.planHash ?? '-', a.decidedAt ?? '-']),
  );

  l.heading('Rounds timeline');
  l.table(
    [
      { header: 'Round', width: 30 },
      { header: 'Kind', width: 38 },
      { header: 'Status', width: 34 },
      { header: 'Opened (UTC)', width: 92, size: 6.5 },
      { header: 'Closed (UTC)', width: 92, size: 6.5 },
      { header: 'Silos', width: 28 },
      { header: 'Mean acc.', width: 37 },
      { header: 'Model in', width: 72, mono: true, size: 7 },
      { header: 'Model out', width: 72, mono: true, size: 7 },
    ],
    s.rounds.map((r) => [
      r.attempt === 1 ? String(r.round) : `${r.round}.${r.attempt}`,
      r.kind,
      r.status,
      r.openedAt,
      r.closedAt ?? '-',
      `${r.reported}/${r.participants}`,
      formatFigure(r.meanAccuracy),
      short(r.modelHash),
      short(r.resultModelHash),
    ]),
  );

  const secure = s.secureAggregation ?? null;
  if (secure !== null) {
    l.heading('Secure aggregation');
    l.paragraph(secure.statement);
    l.fields([
      ['Protocol', secure.protocol],
      ['Threshold', `t = ${secure.threshold}`],
      [
        'Neighbours',
        secure.neighbourCount === null ? 'complete graph (n - 1 per silo)' : `${secure.neighbourCount} per silo`,
      ],
      ['Modulus', `2^${secure.modulusBits}`],
      ['Clipping norm', `C = ${compact(secure.clipNorm)}`],
    ]);
    l.table(
      [
        { header: 'Round', width: 40 },
        { header: 'Status', width: 50 },
        { header: 'Masked inputs summed', width: 95 },
        { header: 'Weights', width: 50 },
        { header: 'Quantisation error bound', width: 120 },
        { header: 'Individual updates stored', width: 120 },
      ],
      s.rounds
        .filter((r) => r.kind === 'train')
        .map((r) => {
          const sa = r.secureAggregation ?? null;
          return [
            r.attempt === 1 ? String(r.round) : `${r.round}.${r.attempt}`,
            r.status,
            sa === null ? '- (no secure sum)' : String(sa.summed),
            sa === null ? '-' : sa.weights,
            sa === null ? '-' : compact(sa.quantisationErrorBound),
            sa === null ? '-' : sa.individualUpdatesStored ? 'YES' : 'no',
          ];
        }),
    );
  }

  l.heading('Federated evaluation of the final model, per silo');
  if (s.finalEvaluation === null) {
    l.paragraph('No final evaluation round closed (the study did not complete).');
  } else {
    l.paragraph(
      `Round ${s.finalEvaluation.round}: each silo evaluated model ${s.finalEvaluation.modelHash} on its local hold-out.`,
    );
    if (s.finalEvaluation.perSilo.some((e) => e.noisy)) {
      l.paragraph(
        'Rows marked "noisy" are estimates from a differentially private release (score histograms with discrete ' +
          'Gaussian noise): accuracy, AUC and the test-record count are noisy, and no loss is released.',
      );
    }
    l.table(
      [
        { header: 'Silo', width: 185 },
        { header: 'Accuracy', width: 65 },
        { header: 'Loss', width: 60 },
        { header: 'AUC', width: 60 },
        { header: 'Test records', width: 65 },
        { header: 'Release', width: 60 },
      ],
      s.finalEvaluation.perSilo.map((e) => [
        e.siloName,
        formatFigure(e.accuracy),
        formatFigure(e.loss),
        formatFigure(e.auc),
        String(e.n),
        e.noisy ? 'noisy' : 'exact',
      ]),
    );
  }

  if (s.finalEvaluation !== null) fairnessSection(l, s.finalEvaluation.fairness);

  l.heading('What left the silos');
  const releases = s.releases;
  l.fields([
    ['Releases', releases.description],
    ['Without DP', releases.releasedWithoutDp.length === 0 ? 'nothing' : releases.releasedWithoutDp.join('; ')],
  ]);
  l.paragraph(releases.statement);

  l.heading('Privacy budget per silo');
  l.paragraph(s.privacy.statement);
  if (s.privacy.mode !== 'none') {
    const a = s.privacy.accounting;
    l.fields([
      ['Accountant', a.accountant],
      ['RDP orders', a.orders],
      ['Noise multiplier', `sigma = ${compact(a.noiseMultiplier)} (relative to C)`],
      ['Clipping norm', `C = ${compact(a.clipNorm)}`],
      ['Sampling rate', `q = ${compact(a.samplingRate)}`],
      ['Steps', `${a.stepsPerRound} per round; ${a.plannedSteps} in total over the ${a.plannedRounds} planned rounds`],
      ['Planned epsilon', `${formatFigure(a.plannedEpsilon)} at delta ${compact(s.privacy.delta)}`],
      [
        'Evaluation noise',
        a.evaluation === null
          ? 'no noisy evaluation release'
          : `discrete Gaussian, standard deviation ${compact(a.evaluation.noiseStddev)} counts; ${a.evaluation.releases} planned release(s), epsilon ${formatFigure(a.evaluation.plannedEpsilon)}`,
      ],
    ]);
    l.table(
      [
        { header: 'Silo', width: 120 },
        { header: 'Mechanism', width: 50 },
        { header: 'Rounds', width: 38 },
        { header: 'Steps', width: 40 },
        { header: 'Eval. releases', width: 50 },
        { header: 'epsilon (hub)', width: 55 },
        { header: 'epsilon (silo)', width: 55 },
        { header: 'Agrees', width: 40 },
        { header: 'Unit', width: 47 },
      ],
      s.privacy.perSilo.map((p) => [
        p.siloName,
        p.mechanism,
        String(p.trainingRounds),
        String(p.steps),
        String(p.evaluationReleases),
        formatFigure(p.hubEpsilon),
        formatFigure(p.reportedEpsilon),
        p.disagreements === 0 ? 'yes' : `no (${p.disagreements})`,
        p.unit,
      ]),
    );
    l.paragraph(
      "epsilon (hub) is the hub's own recomputation for the rounds and releases it charged (or the silo reported, " +
        'if more); epsilon (silo) is the largest figure the silo reported. sigma is the noise multiplier relative to ' +
        'the clipping norm C; q is the Poisson sampling rate.',
    );
  }

  l.heading('Model hashes (SHA-256 of the float32 parameters)');
  l.fields([
    ['Initial model', s.models.initial ?? '-', true],
    ['Final model', s.models.final ?? '- (the study did not complete)', true],
  ]);
  l.fields(
    s.models.perRound.flatMap((m): [string, string, boolean][] => {
      const round = m.attempt === 1 ? `Round ${m.round}` : `Round ${m.round} attempt ${m.attempt}`;
      return [
        [`${round} published`, m.input, true],
        [`${round} result`, m.output ?? '-', true],
      ];
    }),
  );

  l.heading('Audit chain verification');
  const v = s.chainVerification;
  l.fields([
    ['Result', v.ok ? 'intact: every record and checkpoint verified' : 'BROKEN'],
    ['Verified at', v.verifiedAt],
    ['Records verified', `${v.records} (head seq ${v.headSeq})`],
    ['Head hash', v.headHash ?? '-', true],
    ['Checkpoints', `${v.checkpointsVerified} of ${v.checkpointsTotal} verified`],
    ...(v.firstBroken === null
      ? []
      : [
          ['First broken link', `seq ${v.firstBroken.seq} (${v.firstBroken.code}): ${v.firstBroken.message}`] as [
            string,
            string,
          ],
        ]),
    ['Report segment', `records seq ${first.seq} to ${last.seq}, ${bundle.checkpoints.length} signed checkpoint(s)`],
    ['Segment head hash', last.hash, true],
  ]);

  l.heading('Signature');
  l.fields([
    ['Algorithm', 'Ed25519 (RFC 8032) over the RFC 8785 canonical JSON of the report'],
    ['Hub key fingerprint', `sha256:${bundle.hub.keyId}`, true],
    ['Report signature', bundle.signature, true],
  ]);

  l.heading('How to verify offline');
  l.paragraph(
    'The signed report is attached to this PDF as report.json (extract it with "pdfdetach -saveall report.pdf", or ' +
      'download it from GET /api/studies/<id>/report.json). On any machine, without network:',
  );
  l.paragraph(s.verifyOffline, MONO);
  l.paragraph(
    'Obtain hub-public.pem out of band: GET /api/audit/public-key.pem (in the console: Audit, "Download hub public ' +
      'key"; every key with its fingerprint: GET /api/audit/public-keys) at a time you trust, or from the hub operator, ' +
      'and check that its fingerprint is the one above. Exit status 0 means intact; 1 names the first broken link. A ' +
      "silo's own audit export can be compared with the report: npx tessera-verify report.json --reconcile agent-export.json",
  );
}

/**
 * The compliance report for people, rendered from a signed bundle whose `study` is a StudyReportSummary: the PDF
 * shows no figure that is not in the bundle, and carries the bundle itself as an attached file.
 */
export function renderReportPdf(bundle: AuditBundle): Promise<Buffer> {
  const summary = bundle.study as unknown as StudyReportSummary;
  if (summary.kind !== STUDY_REPORT_KIND) {
    return Promise.reject(new Error(`the bundle's study summary is not a ${STUDY_REPORT_KIND}`));
  }
  return new Promise((resolve, reject) => {
    const doc = new PDFDocument({
      size: 'A4',
      margin: MARGIN,
      info: {
        Title: pdfText(`Compliance report: ${summary.name}`),
        Subject: `Study ${summary.id}, plan ${summary.planHash}`,
        Creator: 'Tessera hub',
        CreationDate: new Date(bundle.generatedAt),
      },
    });
    const chunks: Buffer[] = [];
    doc.on('data', (c: Buffer) => chunks.push(c));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
    try {
      layOut(doc, bundle, summary);
      doc.file(Buffer.from(JSON.stringify(bundle, null, 2) + '\n', 'utf8'), {
        name: 'report.json',
        type: 'application/json',
        description: `Signed audit bundle (tessera.audit-bundle/1), canonical SHA-256 ${bundleSha256(bundle)}`,
        creationDate: new Date(bundle.generatedAt),
      });
      doc.end();
    } catch (err) {
      reject(err instanceof Error ? err : new Error(String(err)));
    }
  });
}

/** SHA-256 of the bundle's RFC 8785 canonical JSON: the same value whatever the file's whitespace. */
export function bundleSha256(bundle: AuditBundle): string {
  return sha256Hex(canonicalJson(bundle));
}
