// Validates the KEDA resources among the manifests given as a JSON array on stdin against
// KEDA's CRD schemas (@kubernetes-models/keda). Prints one line per resource; exits 1 if
// any is invalid.
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication";

const kinds = { ScaledObject, TriggerAuthentication };
let input = "";
for await (const chunk of process.stdin) input += chunk;
let failed = false;
for (const manifest of JSON.parse(input)) {
  const Kind = kinds[manifest.kind];
  if (!manifest.apiVersion?.startsWith("keda.sh/") || !Kind) continue;
  try {
    new Kind(manifest).validate();
    console.log(`valid: ${manifest.kind}/${manifest.metadata.name}`);
  } catch (error) {
    failed = true;
    console.log(`INVALID: ${manifest.kind}/${manifest.metadata.name}: ${error.message}`);
  }
}
process.exit(failed ? 1 : 0);
