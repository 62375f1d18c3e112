package httpapi

// adminDeleteRoutes are the admin endpoints of deletion (one, by date and size, a user's) and the remote cache purge.
func (a *API) adminDeleteRoutes() []adminRoute {
	return nil
}
