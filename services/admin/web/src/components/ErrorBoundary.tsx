/**
 * A page that throws while rendering shows this card instead of blanking the whole app; the
 * navigation stays usable. The layout keys it by path, so moving to another page resets it.
 */
import { Component, type ErrorInfo, type ReactNode } from "react";
import { translate } from "@/i18n";

interface State {
  error: Error | null;
}

export class ErrorBoundary extends Component<{ children: ReactNode }, State> {
  state: State = { error: null };

  static getDerivedStateFromError(error: Error): State {
    return { error };
  }

  componentDidCatch(error: Error, info: ErrorInfo): void {
    console.error("page failed to render:", error, info.componentStack);
  }

  render() {
    if (this.state.error === null) return this.props.children;
    return (
      <div className="card center-block" role="alert" data-testid="page-error">
        <h1>{translate("error.page")}</h1>
        <p className="muted small break">{this.state.error.message}</p>
        <button className="btn" type="button" onClick={() => window.location.reload()}>
          {translate("common.reload")}
        </button>
      </div>
    );
  }
}
