import { TextField } from './wizard-fields.js';
import type { WizardStep } from './wizard-step.js';

function BasicsFields() {
  return (
    <>
      <TextField
        path="name"
        name="name"
        label="Study name"
        hint="3 to 128 characters; stewards see it at their agent."
      />
      <TextField
        path="purpose"
        name="purpose"
        label="Purpose"
        hint="What the model is for, in words a data steward can judge (10 to 4000 characters)."
        rows={4}
      />
    </>
  );
}

export const basicsStep: WizardStep = {
  id: 'basics',
  title: 'Study',
  owns: ['name', 'purpose'],
  fieldPaths: () => ['name', 'purpose'],
  Component: BasicsFields,
};
