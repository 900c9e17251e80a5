enum CustodyServerPlaceholder {}
