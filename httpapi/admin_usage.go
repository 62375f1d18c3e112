package httpapi

// adminUsageRoutes are the admin endpoints of a user's media list, the users' media statistics and mxcas's usage.
func (a *API) adminUsageRoutes() []adminRoute {
	return nil
}
