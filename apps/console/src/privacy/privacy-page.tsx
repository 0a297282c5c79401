import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { useApi } from '../auth/session-context.js';
import { EmptyState, ErrorMessage, Loading } from '../ui/feedback.js';
import { usePageTitle } from '../ui/page-title.js';

/** The privacy section's entry: every silo, each linking to what all studies have spent on its data. */
export function PrivacyPage() {
  const api = useApi();
  const silos = useQuery({ queryKey: ['silos'], queryFn: () => api.silos() });
  usePageTitle('Privacy');
  return (
    <section className="page" aria-labelledby="privacy-title">
      <h1 id="privacy-title">Privacy by silo</h1>
      <p className="hint">
        Each study has its own privacy target; a silo taking part in several studies spends on all of them. Choose a
        silo to see what every study has spent on its data, and the total.
      </p>
      {silos.isPending ? (
        <Loading label="Loading the silos…" />
      ) : silos.isError ? (
        <ErrorMessage error={silos.error} title="The silos could not be loaded" />
      ) : silos.data.length === 0 ? (
        <EmptyState title="No silo registered yet" />
      ) : (
        <ul>
          {silos.data.map((s) => (
            <li key={s.id}>
              <Link to={`/privacy/silos/${s.id}`}>{s.name}</Link>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
