/**
 * Who is logged in, and the server's public status.
 *
 *   const { user, status, isAdmin, isRoot, login, logout, refreshUser } = useAuth();
 *
 * At start: `GET /api/status` and `GET /api/user/self` (401 means nobody; no toast). The
 * session itself is the server's HttpOnly cookie. Any 401 later (expired session, password
 * changed elsewhere) forgets the user, and <RequireRole> sends them to /login.
 */
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { api, setApiHandlers } from "@/api/client";
import { ROLE, type LoggedInUser, type Status, type User } from "@/api/types";

interface AuthValue {
  /** false until status and the first `/api/user/self` have answered */
  ready: boolean;
  status: Status | null;
  user: User | null;
  isAdmin: boolean;
  isRoot: boolean;
  login: (username: string, password: string) => Promise<User>;
  /** After an OAuth callback or anything else that set the session cookie. */
  refreshUser: () => Promise<User | null>;
  refreshStatus: () => Promise<void>;
  logout: () => Promise<void>;
}

const AuthContext = createContext<AuthValue | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [ready, setReady] = useState(false);
  const [status, setStatus] = useState<Status | null>(null);
  const [user, setUser] = useState<User | null>(null);

  const refreshUser = useCallback(async () => {
    try {
      const self = await api.get<User>("/user/self", { silent: true });
      setUser(self);
      return self;
    } catch {
      setUser(null);
      return null;
    }
  }, []);

  const refreshStatus = useCallback(async () => {
    try {
      setStatus(await api.get<Status>("/status"));
    } catch {
      // the toast said why; pages work without status
    }
  }, []);

  useEffect(() => {
    setApiHandlers({ onUnauthorized: () => setUser(null) });
    void Promise.all([refreshStatus(), refreshUser()]).finally(() => setReady(true));
  }, [refreshStatus, refreshUser]);

  useEffect(() => {
    if (status?.system_name) document.title = status.system_name;
  }, [status?.system_name]);

  const login = useCallback(
    async (username: string, password: string) => {
      await api.post<LoggedInUser>("/user/login", { username, password });
      const self = await refreshUser();
      if (self === null) throw new Error("login did not start a session");
      return self;
    },
    [refreshUser],
  );

  const logout = useCallback(async () => {
    try {
      await api.get("/user/logout", { silent: true });
    } finally {
      setUser(null);
    }
  }, []);

  const value = useMemo<AuthValue>(
    () => ({
      ready,
      status,
      user,
      isAdmin: (user?.role ?? 0) >= ROLE.ADMIN,
      isRoot: (user?.role ?? 0) >= ROLE.ROOT,
      login,
      refreshUser,
      refreshStatus,
      logout,
    }),
    [ready, status, user, login, refreshUser, refreshStatus, logout],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthValue {
  const value = useContext(AuthContext);
  if (value === null) throw new Error("useAuth outside AuthProvider");
  return value;
}
