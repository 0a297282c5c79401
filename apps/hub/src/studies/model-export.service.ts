import { Inject, Injectable } from '@nestjs/common';
import { exportOnnx, exportTfjs, parseModelSpec } from '@tessera/ml/server';
import { modelSpecOf, planNetwork } from '@tessera/protocol';
import { AuditTrail, type AuditActor } from '../audit/audit-trail';
import { BlobStore } from '../blobs/blob-store';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { float32FromBytes } from '../rounds/model-math';
import { StudiesService } from './studies.service';

export type ModelFile = 'model.json' | 'weights.bin' | 'model.onnx' | 'parameters.f32';

export const MODEL_FILES: readonly ModelFile[] = ['model.json', 'weights.bin', 'model.onnx', 'parameters.f32'];

/** A completed study's final model, as TensorFlow.js files (model.json + weights.bin), ONNX, or raw float32. */
@Injectable()
export class ModelExportService {
  constructor(
    private readonly studies: StudiesService,
    private readonly blobs: BlobStore,
    @Inject(AuditTrail) private readonly audit: AuditTrail,
  ) {}

  async file(
    studyId: string,
    file: ModelFile,
    actor: AuditActor,
  ): Promise<{ bytes: Buffer; contentType: string; modelHash: string }> {
    const study = await this.studies.entity(studyId);
    if (study.status !== 'completed' || !study.currentModelHash) {
      throw new HubException(
        HubErrorCode.STUDY_STATE,
        `Study "${study.name}" is ${study.status}: only a completed study's model can be exported.`,
      );
    }
    const raw = await this.blobs.get(study.currentModelHash);
    const plan = study.plan;
    // The raw parameters need no exporter. A network plan exports through the network exporters (every layer kind,
    // in the package that loads TensorFlow.js); registry plans through their own, which do not.
    const exporters = async () => {
      if (plan.model.kind === 'network') {
        const ml = await import('@tessera/ml');
        return {
          onnx: (p: Float32Array) => ml.exportNetworkOnnx(planNetwork(plan), p),
          tfjs: (p: Float32Array) => ml.exportNetworkTfjs(planNetwork(plan), p),
        };
      }
      return {
        onnx: (p: Float32Array) => exportOnnx(parseModelSpec(modelSpecOf(plan)), p),
        tfjs: (p: Float32Array) => exportTfjs(parseModelSpec(modelSpecOf(plan)), p),
      };
    };
    let out: { bytes: Buffer; contentType: string };
    switch (file) {
      case 'parameters.f32':
        out = { bytes: raw, contentType: 'application/octet-stream' };
        break;
      case 'model.onnx':
        out = {
          bytes: Buffer.from((await exporters()).onnx(float32FromBytes(raw))),
          contentType: 'application/octet-stream',
        };
        break;
      case 'model.json':
        out = {
          bytes: Buffer.from(JSON.stringify((await exporters()).tfjs(float32FromBytes(raw)).modelJson)),
          contentType: 'application/json',
        };
        break;
      case 'weights.bin':
        out = {
          bytes: Buffer.from((await exporters()).tfjs(float32FromBytes(raw)).weightsBin),
          contentType: 'application/octet-stream',
        };
        break;
      default: {
        const unknown: never = file;
        throw new HubException(HubErrorCode.NOT_FOUND, `Unknown model file ${String(unknown)}.`);
      }
    }
    await this.audit.record({
      actor,
      action: 'model.downloaded',
      subject: { studyId },
      details: { file, modelHash: study.currentModelHash, bytes: out.bytes.length },
    });
    return { ...out, modelHash: study.currentModelHash };
  }
}
