/**
 * A data table: columns say how to render a row. On a phone each row becomes a card whose
 * cells are labelled with their column's `label` (CSS in global.css, `.table-stack`).
 *
 *   <Table rows={tokens} rowKey={(t) => t.id} loading={loading} columns={[
 *     { key: "name", label: t("tokens.name"), render: (t) => t.name },
 *   ]} />
 */
import type { ReactNode } from "react";
import { Empty, Spinner } from "./ui";

export interface Column<T> {
  key: string;
  label: string;
  render: (row: T) => ReactNode;
  className?: string;
}

export function Table<T>({
  columns,
  rows,
  rowKey,
  loading = false,
  empty,
  testId,
}: {
  columns: Column<T>[];
  rows: T[];
  rowKey: (row: T) => string | number;
  loading?: boolean;
  empty?: ReactNode;
  testId?: string;
}) {
  if (loading && rows.length === 0) return <Spinner />;
  if (rows.length === 0) return <Empty>{empty}</Empty>;
  return (
    <div className="table-wrap">
      <table className="table table-stack" data-testid={testId} aria-busy={loading || undefined}>
        <thead>
          <tr>
            {columns.map((column) => (
              <th key={column.key} className={column.className}>
                {column.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={rowKey(row)}>
              {columns.map((column) => (
                <td key={column.key} className={column.className} data-label={column.label}>
                  {column.render(row)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
