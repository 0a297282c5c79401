/**
 * The search box and status filter above a list (studies, silos): labelled fields in one search landmark. The
 * list decides what the words and the status match.
 */
export function ListFilters<S extends string>(props: {
  /** Names the landmark and prefixes the fields' ids ("Filter studies", id `studies-search`). */
  noun: string;
  query: string;
  onQuery: (query: string) => void;
  placeholder: string;
  status: S;
  onStatus: (status: S) => void;
  statuses: readonly { value: S; label: string }[];
}) {
  const { noun } = props;
  return (
    <div className="row filters" role="search" aria-label={`Filter ${noun}`}>
      <div className="field">
        <label htmlFor={`${noun}-search`}>Search</label>
        <input
          id={`${noun}-search`}
          type="search"
          value={props.query}
          onChange={(e) => props.onQuery(e.target.value)}
          placeholder={props.placeholder}
        />
      </div>
      <div className="field">
        <label htmlFor={`${noun}-status-filter`}>Status</label>
        <select id={`${noun}-status-filter`} value={props.status} onChange={(e) => props.onStatus(e.target.value as S)}>
          {props.statuses.map((f) => (
            <option key={f.value} value={f.value}>
              {f.label}
            </option>
          ))}
        </select>
      </div>
    </div>
  );
}
