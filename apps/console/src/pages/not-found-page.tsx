import { Link } from 'react-router';
import { usePageTitle } from '../ui/page-title.js';

export function NotFoundPage() {
  usePageTitle('Not found');
  return (
    <section className="page">
      <h1>Page not found</h1>
      <p>
        There is nothing at this address. <Link to="/studies">Go to the studies</Link>.
      </p>
    </section>
  );
}
