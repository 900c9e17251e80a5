enum CustodyClientPlaceholder {}
