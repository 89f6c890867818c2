/**
 * The list pages' shared state: One API's paged list (`GET <path>?p=&size=`) or, once a keyword
 * is submitted, its search (`GET <path>search?keyword=`), reloaded whenever the page, the search
 * or `query` (e.g. an order) changes.
 */
import { useCallback, useEffect, useState } from "react";
import { api } from "@/api/client";
import { ITEMS_PER_PAGE } from "@/api/types";

type Query = Record<string, string | number>;

export function usePagedList<T>(path: string, query: Query = {}) {
  const [rows, setRows] = useState<T[]>([]);
  const [page, setPage] = useState(0);
  const [keyword, setKeyword] = useState("");
  const [searching, setSearching] = useState("");
  const [loading, setLoading] = useState(false);
  // A new object each render: compare by value so `load` changes only when the query does.
  const queryKey = JSON.stringify(query);

  const load = useCallback(async () => {
    setLoading(true);
    const paging = { p: page, size: ITEMS_PER_PAGE };
    try {
      setRows(
        searching
          ? await api.get<T[]>(`${path}search`, { query: { keyword: searching, ...paging } })
          : await api.get<T[]>(path, { query: { ...paging, ...(JSON.parse(queryKey) as Query) } }),
      );
    } catch {
      // toast shown by the client
    } finally {
      setLoading(false);
    }
  }, [path, page, searching, queryKey]);

  useEffect(() => {
    void load();
  }, [load]);

  /** Search for what the keyword box holds (an empty box lists again), from the first page. */
  const search = () => {
    setPage(0);
    setSearching(keyword.trim());
  };

  return { rows, setRows, page, setPage, keyword, setKeyword, searching, search, loading, load };
}
